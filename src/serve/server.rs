//! The HTTP side: routes, handlers, startup and graceful shutdown.
//!
//! Routes: `POST /v1/infer`, `GET /healthz`, `GET /readyz`, `GET /metrics`; anything else
//! is 404 (unknown path) or 405 (known path, other method), always with a JSON message.
//! Handlers decode and check bodies (large ones on the blocking pool), enqueue without
//! waiting, and await their answer; they never call the backend and never block the
//! runtime. Must not panic on any input.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::backend::BackendFactory;
use super::batcher::{self, BatchPolicy, Job, ReadyModel, Reply};
use super::body::{
    check_index_range, decode_request, encode_binary, BodyFormat, BINARY_CONTENT_TYPE,
};
use super::config::ServeConfig;
use super::error::{RequestError, ServeError};
use super::metrics::{Metrics, METRICS_CONTENT_TYPE};

/// Bodies above this size are decoded on the blocking pool: parsing a ResNet-50 image as
/// JSON takes milliseconds, which would stall every other connection on that worker.
const INLINE_DECODE_MAX_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct AppState {
    queue: SyncSender<Job>,
    queue_capacity: usize,
    max_body_bytes: usize,
    body_read_timeout: Duration,
    ready: Arc<OnceLock<ReadyModel>>,
    metrics: Arc<Metrics>,
}

/// A bound server whose model is loading; [`Server::run`] serves until shutdown.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    batcher: std::thread::JoinHandle<()>,
    on_ready: oneshot::Receiver<Result<ReadyModel, ServeError>>,
    config: ServeConfig,
}

impl Server {
    /// Binds the listening socket and starts loading and warming up the backend on the
    /// batcher thread. Requests are accepted from now on; `/v1/infer` answers 503 and
    /// `/readyz` 503 until warm-up ends.
    pub async fn bind(
        config: ServeConfig,
        model: &str,
        factory: BackendFactory,
    ) -> Result<Self, ServeError> {
        if config.max_batch_size == 0 || config.queue_capacity == 0 {
            return Err(ServeError::Config {
                reason: format!(
                    "max batch size ({}) and queue capacity ({}) must be at least 1",
                    config.max_batch_size, config.queue_capacity
                ),
            });
        }
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let metrics = Arc::new(Metrics::new(config.max_batch_size));
        let ready = Arc::new(OnceLock::new());
        let (queue, jobs) = sync_channel(config.queue_capacity);
        let (ready_tx, on_ready) = oneshot::channel();
        let policy = BatchPolicy {
            max_batch_size: config.max_batch_size,
            max_queue_delay: config.max_queue_delay,
            max_in_flight: config.max_batches_in_flight,
        };
        let batcher = batcher::spawn(
            model.to_owned(),
            factory,
            policy,
            jobs,
            Arc::clone(&metrics),
            Arc::clone(&ready),
            ready_tx,
        )?;
        let state = AppState {
            queue,
            queue_capacity: config.queue_capacity,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            ready,
            metrics,
        };
        Ok(Self {
            listener,
            local_addr,
            state,
            batcher,
            on_ready,
            config,
        })
    }

    /// The address the server listens on (with the OS-chosen port when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Set once the model has loaded and warmed up (when `/readyz` turns 200), with what it
    /// takes as input: for a caller running the server in its own process, which needs no
    /// HTTP round trip to know (the `serve.<model>` tenant).
    pub(crate) fn readiness(&self) -> Arc<OnceLock<ReadyModel>> {
        Arc::clone(&self.state.ready)
    }

    /// Serves until `shutdown` completes or the backend fails to load, then stops
    /// accepting, finishes every in-flight request, drains the queue and joins the
    /// batcher thread. Prints the address on stderr when bound and again when ready.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            local_addr,
            state,
            batcher,
            on_ready,
            config,
        } = self;
        eprintln!("gpushare serve: listening on http://{local_addr} (loading model)");
        let failure: Arc<std::sync::Mutex<Option<ServeError>>> = Arc::default();
        let stop = {
            let failure = Arc::clone(&failure);
            async move {
                let startup = watch_startup(on_ready, local_addr, config.ready_file.clone());
                // Biased so the shutdown future is polled (and a signal handler installed)
                // before the ready file can announce the server.
                tokio::select! {
                    biased;
                    () = shutdown => {
                        eprintln!(
                            "gpushare serve: shutting down, finishing in-flight requests \
                             (at most {} s; a second signal exits now)",
                            config.limits.shutdown_timeout.as_secs_f64()
                        );
                    }
                    err = startup => {
                        if let Ok(mut slot) = failure.lock() {
                            *slot = Some(err);
                        }
                    }
                }
            }
        };
        super::connections::serve(listener, router(state), config.limits, stop).await;
        // The router, and with it every queue sender, is gone: the batcher drains and ends.
        // A batch still running after the shutdown period is not waited for either.
        // Joined on a plain thread, not the runtime's blocking pool: a runtime waits for its
        // blocking tasks when it is dropped, which would wait for that batch after all.
        let (joined_tx, joining) = oneshot::channel();
        std::thread::Builder::new()
            .name("gpushare-batcher-join".to_owned())
            .spawn(move || {
                let _ = joined_tx.send(batcher.join());
            })
            .map_err(ServeError::SpawnBatcher)?;
        let Ok(joined) = tokio::time::timeout(config.limits.shutdown_timeout, joining).await else {
            eprintln!(
                "gpushare serve: the model's batch is still running after the shutdown \
                 period; not waiting for it"
            );
            return match failure.lock().ok().and_then(|mut slot| slot.take()) {
                Some(err) => Err(err),
                None => Ok(()),
            };
        };
        let joined = joined.map_err(|_| ServeError::BatcherPanicked)?;
        if let Some(err) = failure.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(err);
        }
        joined.map_err(|_| ServeError::BatcherPanicked)
    }
}

/// Completes only on a startup failure; after a successful warm-up it announces readiness
/// and then waits forever.
async fn watch_startup(
    on_ready: oneshot::Receiver<Result<ReadyModel, ServeError>>,
    local_addr: SocketAddr,
    ready_file: Option<std::path::PathBuf>,
) -> ServeError {
    let ready = match on_ready.await {
        Ok(Ok(ready)) => ready,
        Ok(Err(err)) => return err,
        Err(_) => return ServeError::BatcherPanicked,
    };
    eprintln!(
        "gpushare serve: ready on http://{local_addr}: model {} input {:?} {}",
        ready.model, ready.spec.shape, ready.spec.dtype
    );
    if let Some(path) = ready_file {
        if let Err(source) = write_ready_file(&path, local_addr) {
            return ServeError::ReadyFile { path, source };
        }
    }
    std::future::pending().await
}

/// Writes `IP:PORT\n` atomically (temporary file, then rename) so a script polling for the
/// file never reads it half-written.
fn write_ready_file(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/infer", post(infer))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The exit status after a second signal: the documented "interrupted" code.
const SECOND_SIGNAL_EXIT_CODE: i32 = 130;

/// Waits for SIGINT (Ctrl-C) or SIGTERM; pass it to [`Server::run`] or `serve`. After it
/// returns, a second SIGINT or SIGTERM exits the process at once with status 130, whatever
/// the graceful shutdown is waiting for.
pub async fn shutdown_signal() {
    next_signal().await;
    tokio::spawn(async {
        next_signal().await;
        eprintln!("gpushare serve: second signal, exiting now");
        std::process::exit(SECOND_SIGNAL_EXIT_CODE);
    });
}

async fn next_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn infer(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let arrived = Instant::now();
    let response = match infer_one(&state, &headers, body).await {
        Ok(reply) => reply_response(reply, wants_binary(&headers)),
        Err(err) => error_response(&err),
    };
    state
        .metrics
        .observe_request(response.status().as_u16(), arrived.elapsed());
    response
}

async fn infer_one(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, RequestError> {
    let ready = state.ready.get().ok_or(RequestError::NotReady)?;
    let (spec, index_limit) = (ready.spec.clone(), ready.index_limit);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let format = BodyFormat::from_content_type(content_type.as_deref())?;
    let bytes = tokio::time::timeout(
        state.body_read_timeout,
        read_body(body, headers, state.max_body_bytes),
    )
    .await
    .map_err(|_| RequestError::BodyTimeout {
        timeout_s: state.body_read_timeout.as_secs_f64(),
    })??;
    let input = if bytes.len() > INLINE_DECODE_MAX_BYTES {
        tokio::task::spawn_blocking(move || decode_request(format, &bytes, &spec))
            .await
            .map_err(|err| RequestError::Backend {
                message: format!("decoding the body on the blocking pool: {err}"),
            })??
    } else {
        decode_request(format, &bytes, &spec)?
    };
    if let Some(limit) = index_limit {
        check_index_range(&input, limit)?;
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        input,
        enqueued_at: Instant::now(),
        reply,
    };
    // Counted before sending so the batcher can never pop a job the gauge has not seen.
    state.metrics.queue_push();
    if let Err(err) = state.queue.try_send(job) {
        state.metrics.queue_pop(1);
        return Err(match err {
            TrySendError::Full(_) => RequestError::QueueFull {
                capacity: state.queue_capacity,
            },
            TrySendError::Disconnected(_) => RequestError::ShuttingDown,
        });
    }
    answer.await.map_err(|_| RequestError::ShuttingDown)?
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, RequestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(declared) = declared {
        if declared > limit as u64 {
            return Err(RequestError::TooLarge {
                limit_bytes: limit,
                got: format!("{declared} bytes"),
            });
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        if is_length_limit(&err) {
            RequestError::TooLarge {
                limit_bytes: limit,
                got: format!("more than {limit} bytes"),
            }
        } else {
            RequestError::malformed(format!("reading the body: {err}"))
        }
    })
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn wants_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains(BINARY_CONTENT_TYPE))
}

fn reply_response(reply: Reply, binary: bool) -> Response {
    let batch_size = HeaderValue::from(reply.batch_size);
    let mut response = if binary {
        (
            [(header::CONTENT_TYPE, BINARY_CONTENT_TYPE)],
            encode_binary(&reply.output),
        )
            .into_response()
    } else {
        Json(serde_json::json!({
            "outputs": reply.output,
            "batch_size": reply.batch_size,
        }))
        .into_response()
    };
    response.headers_mut().insert("x-batch-size", batch_size);
    response
}

fn error_response(err: &RequestError) -> Response {
    let status = err.status();
    let mut response = (
        status,
        Json(serde_json::json!({ "error": err.to_string(), "status": status.as_u16() })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body may still come; the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready.get() {
        Some(ready) => Json(serde_json::json!({
            "status": "ready",
            "model": ready.model,
            "input_shape": ready.spec.shape,
            "dtype": ready.spec.dtype,
        }))
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "loading" })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(&RequestError::NotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    })
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_response(&RequestError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    })
}
