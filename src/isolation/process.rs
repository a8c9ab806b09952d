//! `process`: each worker is a child process of the runner, the same executable's
//! hidden `worker` subcommand.

use std::path::PathBuf;
use std::process::Stdio;

use super::{Isolation, IsolationError, WorkerLaunch};

pub struct ProcessIsolation {
    exe: PathBuf,
}

impl ProcessIsolation {
    /// Workers run this executable (the running one, unless a test says otherwise).
    pub fn new(exe: Option<PathBuf>) -> Result<Self, IsolationError> {
        let exe = match exe {
            Some(exe) => exe,
            None => std::env::current_exe().map_err(IsolationError::CurrentExe)?,
        };
        Ok(ProcessIsolation { exe })
    }
}

impl Isolation for ProcessIsolation {
    fn name(&self) -> &'static str {
        "process"
    }

    fn command(
        &self,
        launch: &WorkerLaunch<'_>,
    ) -> Result<tokio::process::Command, IsolationError> {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("worker")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A group of its own keeps a terminal's Ctrl-C away from the workers: the runner
        // receives it and stops them in order, recording what they had measured.
        #[cfg(unix)]
        cmd.process_group(0);
        // If the runner dies without cleaning up (SIGKILL), the kernel kills the worker
        // too. Workers also exit when their stdin closes; this covers a worker stuck in a
        // step.
        #[cfg(target_os = "linux")]
        // SAFETY: die_with_parent is async-signal-safe (one prctl call).
        unsafe {
            cmd.pre_exec(super::die_with_parent);
        }
        Ok(cmd)
    }
}
