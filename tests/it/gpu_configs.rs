//! Tests of the `gpu-configs/` shell scripts, the ones users run on their own GPU hosts
//! to change sharing settings.
//!
//! Every script runs against stand-ins for `nvidia-smi`, `nvidia-cuda-mps-control` and
//! `pgrep` (`tests/it/gpu_configs/stubs/`), copied first on PATH in a temporary directory
//! and also named through the scripts' `GPUSHARE_NVIDIA_SMI` / `GPUSHARE_MPS_CONTROL`
//! test hooks, so no test can reach a real GPU's settings even on a GPU host. The stubs
//! log every call and answer queries from `STUB_*` variables, which lets each branch run:
//! dry runs, successful changes (the exact commands, in order) and every refusal (exit
//! code and message).
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

mod every_script;
mod mig;
mod mps;
mod time_slicing;

const STUBS: [&str; 3] = ["nvidia-smi", "nvidia-cuda-mps-control", "pgrep"];

/// A temporary directory standing in for a GPU host: stubs in `bin/`, their state in
/// `state/`, their call log in `calls.log`.
struct FakeHost {
    dir: TempDir,
    env: Vec<(String, String)>,
}

/// What one script run did.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl FakeHost {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let stubs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/gpu_configs/stubs");
        fs::create_dir(dir.path().join("bin")).expect("creating bin/");
        fs::create_dir(dir.path().join("state")).expect("creating state/");
        for stub in STUBS {
            let to = dir.path().join("bin").join(stub);
            fs::copy(stubs.join(stub), &to).expect("copying a stub");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod stub");
        }
        let host = FakeHost {
            dir,
            env: Vec::new(),
        };
        let (bin, log, state) = (host.path("bin"), host.path("calls.log"), host.path("state"));
        let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
        host.with("PATH", &path)
            .with("GPUSHARE_ASSUME_ROOT", "1")
            .with("GPUSHARE_NVIDIA_SMI", &format!("{bin}/nvidia-smi"))
            .with(
                "GPUSHARE_MPS_CONTROL",
                &format!("{bin}/nvidia-cuda-mps-control"),
            )
            .with("STUB_LOG", &log)
            .with("STUB_STATE", &state)
    }

    /// Sets an environment variable for every later run (a later value wins).
    fn with(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn not_root(self) -> Self {
        self.with("GPUSHARE_ASSUME_ROOT", "0")
    }

    /// Absolute path of `rel` inside the fake host, as a string.
    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }

    fn exists(&self, rel: &str) -> bool {
        self.dir.path().join(rel).exists()
    }

    /// Runs a script with a clean environment; the temp dir reads as `$T` in the output.
    fn run(&self, script: &str, args: &[&str]) -> Outcome {
        let script_path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "gpu-configs", script]
            .iter()
            .collect();
        let output = Command::new(&script_path)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running a gpu-configs script");
        Outcome {
            code: output.status.code().expect("script killed by a signal"),
            stdout: self.redact(&String::from_utf8_lossy(&output.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&output.stderr)),
        }
    }

    fn redact(&self, text: &str) -> String {
        text.replace(self.dir.path().to_string_lossy().as_ref(), "$T")
    }

    /// Every call the stubs logged, in order.
    fn calls(&self) -> Vec<String> {
        let log = fs::read_to_string(self.path("calls.log")).unwrap_or_default();
        log.lines().map(|line| self.redact(line)).collect()
    }

    /// The logged calls that change something, in order: everything but queries.
    fn changes(&self) -> Vec<String> {
        let is_query = |call: &String| {
            call.contains("--query-")
                || call.ends_with(" -lgi")
                || call.ends_with(" -lci")
                || call.contains("< get_server_list")
        };
        self.calls()
            .into_iter()
            .filter(|call| !is_query(call))
            .collect()
    }

    /// Pretends an MPS control daemon with `pid` serves `pipe_dir` (relative to the host).
    fn mps_daemon_running(&self, pipe_dir: &str, pid: u32, server_pids: &[u32]) {
        fs::create_dir_all(self.path(pipe_dir)).expect("creating the pipe dir");
        let pid_file = format!("{pipe_dir}/nvidia-cuda-mps-control.pid");
        fs::write(self.path(&pid_file), format!("{pid}\n")).expect("writing the pid file");
        fs::write(self.path(&format!("{pipe_dir}/control")), "").expect("writing control");
        fs::write(self.path("state/mps_control_pids"), format!("{pid}\n")).expect("pids");
        let servers: String = server_pids.iter().map(|p| format!("{p}\n")).collect();
        fs::write(self.path("state/mps_server_pids"), servers).expect("server pids");
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Asserts the exit code and that stderr contains `message`, printing both on failure.
#[track_caller]
fn assert_refused(outcome: &Outcome, code: i32, message: &str) {
    assert_eq!(outcome.code, code, "{outcome:#?}");
    assert!(
        outcome.stderr.contains(message),
        "expected {message:?} in {outcome:#?}"
    );
}
