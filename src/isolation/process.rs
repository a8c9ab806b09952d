//! `process`: each worker is a child process of the runner, the same executable's
//! hidden `worker` subcommand.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Child;

use super::{
    BoxFuture, Isolation, IsolationError, WorkerConnection, WorkerExit, WorkerHandle, WorkerLaunch,
};

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

impl ProcessIsolation {
    /// The command that starts one worker with the protocol on its stdin and stdout (for
    /// callers that drive a worker themselves, such as the latency bench's co-tenant).
    pub fn command(&self, launch: &WorkerLaunch<'_>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("worker")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        super::own_worker(&mut cmd);
        cmd
    }
}

impl Isolation for ProcessIsolation {
    fn name(&self) -> &'static str {
        "process"
    }

    fn spawn<'a>(
        &'a self,
        launch: &'a WorkerLaunch<'a>,
    ) -> BoxFuture<'a, Result<WorkerConnection, IsolationError>> {
        Box::pin(async move {
            let mut child =
                self.command(launch)
                    .spawn()
                    .map_err(|source| IsolationError::SpawnProcess {
                        tenant: launch.tenant.to_string(),
                        source,
                    })?;
            let (Some(stdin), Some(stdout), stderr) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(IsolationError::SpawnProcess {
                    tenant: launch.tenant.to_string(),
                    source: std::io::Error::other("its stdin or stdout is not a pipe"),
                });
            };
            Ok(WorkerConnection {
                from_worker: Box::new(stdout),
                to_worker: Box::new(stdin),
                diagnostics: stderr.map(|e| Box::new(e) as _),
                handle: Box::new(ChildHandle(child)),
            })
        })
    }
}

/// A worker process the runner started; killed on drop.
struct ChildHandle(Child);

impl WorkerHandle for ChildHandle {
    fn wait(&mut self) -> BoxFuture<'_, Option<WorkerExit>> {
        Box::pin(async move {
            let status = self.0.wait().await.ok()?;
            #[cfg(unix)]
            let signal = std::os::unix::process::ExitStatusExt::signal(&status);
            #[cfg(not(unix))]
            let signal = None;
            Some(WorkerExit {
                code: status.code(),
                signal,
            })
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.0.start_kill();
        })
    }
}
