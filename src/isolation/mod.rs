//! Isolation backends: how a tenant's worker is started (a process, later a container or
//! a Kubernetes pod). A backend turns a launch request into a command whose stdin and
//! stdout carry the worker protocol; it knows nothing about workloads.

mod process;

pub use process::ProcessIsolation;

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
