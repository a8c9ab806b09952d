//! Isolation backends: how a tenant's worker is started (a process, later a container or
//! a Kubernetes pod). A backend turns a launch request into a command whose stdin and
//! stdout carry the worker protocol; it knows nothing about workloads.

mod process;

pub use process::ProcessIsolation;

/// For `pre_exec` in a child gpushare starts and owns (a worker, a load generator): asks
/// the kernel to SIGKILL the child when the thread that started it dies, so a runner or
/// worker killed without cleaning up (SIGKILL) takes its children with it. Linux only.
/// Async-signal-safe, as `pre_exec` requires: one `prctl` call on the child's own state.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers and changes only this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

use thiserror::Error;

/// What the runner asks a backend to start.
#[derive(Debug, Clone)]
pub struct WorkerLaunch<'a> {
    pub tenant: &'a str,
    /// Environment the sharing mode needs in the worker (MPS pipe directory, ...).
    pub env: &'a [(String, String)],
}

/// Errors from preparing a worker command.
#[derive(Debug, Error)]
pub enum IsolationError {
    #[error("finding the gpushare executable to start workers: {0}")]
    CurrentExe(std::io::Error),
}

/// A way to start workers.
pub trait Isolation: Send + Sync {
    /// The backend's name as reports show it.
    fn name(&self) -> &'static str;

    /// A command that starts one worker speaking the protocol on stdin and stdout.
    fn command(&self, launch: &WorkerLaunch<'_>)
        -> Result<tokio::process::Command, IsolationError>;
}
