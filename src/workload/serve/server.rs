//! The inference server inside the tenant's worker process: `gpushare serve`'s server on a
//! tokio runtime of its own, the model on its batcher thread, bound to 127.0.0.1 on a port
//! the OS chooses.
//!
//! Dropping it shuts the server down gracefully (in-flight requests answered, the batcher
//! drained) within a bounded time; a worker that dies instead takes the whole server with
//! it, since it is only threads of that process.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::serve::{BackendFactory, ReadyModel, ServeConfig, ServeError, Server};

/// How often `wait_ready` looks at the model's state.
const READY_POLL: Duration = Duration::from_millis(5);
/// How long a graceful shutdown may take before the runtime is dropped anyway. With the
/// generator gone first, only the batch in progress is left to finish; the bound keeps a
/// stopping worker well inside the runner's 5 s exit grace.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Runtime threads for the HTTP side; the model runs on the batcher's own thread.
const RUNTIME_THREADS: usize = 2;

pub struct InProcessServer {
    addr: SocketAddr,
    ready: Arc<OnceLock<ReadyModel>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessServer {
    /// Binds the server and starts loading the model; returns without waiting for it.
    pub fn start(
        config: ServeConfig,
        model: &str,
        factory: BackendFactory,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("gpushare-serve")
            .enable_all()
            .build()
            .map_err(|err| format!("building the server's runtime: {err}"))?;
        let server = runtime
            .block_on(Server::bind(config, model, factory))
            .map_err(|err| crate::errors::error_chain(&err))?;
        let addr = server.local_addr();
        let ready = server.readiness();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = runtime.spawn(server.run(async move {
            // A dropped sender means the same as a sent signal: stop.
            let _ = stop.await;
        }));
        Ok(Self {
            addr,
            ready,
            shutdown: Some(shutdown),
            task: Some(task),
            runtime: Some(runtime),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the model has loaded and warmed up (`/readyz` would answer 200), and
    /// returns what it takes as input; `Err` when it failed to load or warm up.
    pub fn wait_ready(&mut self) -> Result<ReadyModel, String> {
        loop {
            if let Some(ready) = self.ready.get() {
                return Ok(ready.clone());
            }
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                return Err(self.ended());
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// Why the server task ended, once it has.
    fn ended(&mut self) -> String {
        let (Some(task), Some(runtime)) = (self.task.take(), self.runtime.as_ref()) else {
            return "the server has already stopped".to_owned();
        };
        match runtime.block_on(task) {
            Ok(Ok(())) => "the server stopped before it was ready".to_owned(),
            Ok(Err(err)) => crate::errors::error_chain(&err),
            Err(err) => format!("the server task ended abnormally: {err}"),
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(task) = self.task.take() {
            // Errors here are the server's last words at exit; nobody is left to tell.
            let _ = runtime.block_on(async { tokio::time::timeout(SHUTDOWN_GRACE, task).await });
        }
        // Bounded: a model stuck in a batch must not keep the worker from exiting.
        runtime.shutdown_timeout(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{BackendError, DelayBackend, InferenceBackend};

    fn delay_factory(warm_up: Duration) -> BackendFactory {
        let backend = DelayBackend {
            warm_up,
            ..DelayBackend::new(4, Duration::from_millis(1))
        };
        Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>))
    }

    fn loopback() -> ServeConfig {
        ServeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..ServeConfig::default()
        }
    }

    #[test]
    fn waits_for_warm_up_and_reports_the_input() {
        let started = std::time::Instant::now();
        let mut server = InProcessServer::start(
            loopback(),
            "test.delay",
            delay_factory(Duration::from_millis(150)),
        )
        .unwrap();
        assert_eq!(server.addr().ip().to_string(), "127.0.0.1");
        assert_ne!(server.addr().port(), 0);
        let ready = server.wait_ready().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(ready.spec.shape, vec![4]);
        assert_eq!(ready.index_limit, None);
        let addr = server.addr();
        drop(server);
        // Gone: nothing listens on the port any more.
        assert!(std::net::TcpStream::connect(addr).is_err());
    }

    #[test]
    fn a_model_that_fails_to_load_is_an_error_with_its_cause() {
        let factory: BackendFactory = Box::new(|| Err(BackendError::msg("no weights here")));
        let mut server = InProcessServer::start(loopback(), "test.broken", factory).unwrap();
        assert_eq!(
            server.wait_ready().unwrap_err(),
            "loading model test.broken: no weights here"
        );
    }
}
