//! Isolation backends: how a tenant's worker is started (a process, a container, a worker
//! that dials in over TCP). A backend turns a launch request into a connection whose two
//! streams carry the worker protocol; it knows nothing about workloads.

pub mod container;
mod process;
mod tcp;

pub use container::ContainerIsolation;
pub use process::ProcessIsolation;
pub use tcp::TcpIsolation;

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

/// Makes `cmd` a worker the runner owns: a process group of its own keeps a terminal's
/// Ctrl-C away from it (the runner receives it and stops workers in order, recording what
/// they had measured), and the kernel kills it if the runner dies without cleaning up
/// (SIGKILL). Workers also exit when their protocol stream closes; this covers one stuck
/// in a step.
pub(crate) fn own_worker(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: die_with_parent is async-signal-safe (one prctl call).
    unsafe {
        cmd.pre_exec(die_with_parent);
    }
}

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

/// A future a backend returns from the object-safe [`Isolation`] and [`WorkerHandle`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the runner asks a backend to start.
#[derive(Debug, Clone)]
pub struct WorkerLaunch<'a> {
    pub tenant: &'a str,
    /// The run this worker belongs to (`time-slicing/c0/r1`), for labels and names.
    pub run_id: &'a str,
    /// Environment the sharing mode needs in the worker (MPS pipe directory, ...).
    pub env: &'a [(String, String)],
    /// The tenant runs on a GPU (a container backend then requests one).
    pub gpu: bool,
}

/// A started worker as the runner sees it, whatever the backend: a byte stream each way
/// for the protocol, its diagnostics, and a handle to wait for or end it. The runner's
/// barrier, timeouts and collection work on this alone.
pub struct WorkerConnection {
    /// Protocol lines from the worker (a child's stdout, a container's attached stdout,
    /// a TCP connection's read half).
    pub from_worker: Box<dyn AsyncRead + Send + Unpin>,
    /// Protocol lines to the worker (stdin, or the write half).
    pub to_worker: Box<dyn AsyncWrite + Send + Unpin>,
    /// What the worker writes for people (stderr), where the backend carries it.
    pub diagnostics: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub handle: Box<dyn WorkerHandle>,
}

/// How a worker ended, as far as its backend can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerExit {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

/// The life of one started worker.
pub trait WorkerHandle: Send {
    /// Resolves when the worker has ended, with how; `None` when the backend cannot tell.
    fn wait(&mut self) -> BoxFuture<'_, Option<WorkerExit>>;
    /// Ends the worker now. Waiting afterwards resolves promptly.
    fn kill(&mut self) -> BoxFuture<'_, ()>;
}

/// Errors from starting a worker.
#[derive(Debug, Error)]
pub enum IsolationError {
    #[error("finding the gpushare executable to start workers: {0}")]
    CurrentExe(std::io::Error),
    #[error("starting the worker process for tenant `{tenant}`")]
    SpawnProcess {
        tenant: String,
        source: std::io::Error,
    },
    #[error("reaching the Docker engine at {host} (is it running? `docker info` tells): {reason}")]
    EngineUnreachable { host: String, reason: String },
    #[error("finding image `{image}` on the Docker engine: gpushare never pulls images; {build}")]
    MissingImage { image: String, build: String },
    #[error("{action}: {reason}")]
    Engine { action: String, reason: String },
    #[error("starting the container of tenant `{tenant}` (image `{image}`): {message}")]
    StartContainer {
        tenant: String,
        image: String,
        message: String,
    },
    #[error("starting the container janitor: {0}")]
    StartJanitor(std::io::Error),
    #[error("listening for workers on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "waiting for the worker of tenant `{tenant}` to connect to {addr}: none joined within {timeout_s} s{refused}"
    )]
    NoWorker {
        tenant: String,
        addr: std::net::SocketAddr,
        timeout_s: f64,
        /// `; refused: ...` with the connections turned away, or empty.
        refused: String,
    },
    #[error("waiting for the worker of tenant `{tenant}` to connect: it exited first ({status})")]
    ExitedBeforeJoining { tenant: String, status: String },
}

/// A way to start workers.
pub trait Isolation: Send + Sync {
    /// The backend's name as reports show it.
    fn name(&self) -> &'static str;

    /// The engine and images a container backend runs, for the study's environment.
    fn container_environment(&self) -> Option<crate::environment::ContainerEnvironment> {
        None
    }

    /// Whether the platform, not gpushare, sets up the sharing mode where the workers run
    /// (a Kubernetes node's device plugin for pods that dial in): the runner then enters
    /// no mode itself and records that the platform's was used.
    fn mode_set_up_by_platform(&self) -> bool {
        false
    }

    /// Starts one worker speaking the protocol over the connection it returns.
    fn spawn<'a>(
        &'a self,
        launch: &'a WorkerLaunch<'a>,
    ) -> BoxFuture<'a, Result<WorkerConnection, IsolationError>>;
}
