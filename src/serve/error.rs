//! Errors of the inference server.
//!
//! Two kinds live here on purpose. [`ServeError`] is the server itself failing (it cannot
//! bind, the model cannot load): `serve` returns it and stops. [`RequestError`] is one
//! request being refused (bad body, full queue): the handler turns it into an HTTP status
//! and a JSON message, and the server keeps serving. [`BackendError`] is what a model
//! backend reports; it becomes a `ServeError` while loading and a 500 while serving.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;

/// The server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be opened.
    #[error("binding the inference server to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The OS would not say which address the socket got (practically impossible after a
    /// successful bind, but it is an I/O call).
    #[error("reading the bound address of the inference server")]
    LocalAddr(#[source] std::io::Error),
    /// The backend's constructor failed (weights missing, device unavailable).
    #[error("loading model {model}")]
    LoadModel {
        model: String,
        #[source]
        source: BackendError,
    },
    /// The backend loaded but its warm-up batch failed.
    #[error("warming up model {model}")]
    WarmUp {
        model: String,
        #[source]
        source: BackendError,
    },
    /// The batcher thread could not be started.
    #[error("starting the batcher thread")]
    SpawnBatcher(#[source] std::io::Error),
    /// The batcher thread panicked outside a batch (inside a batch a panic is caught and
    /// answered with 500).
    #[error("running the batcher thread: it panicked")]
    BatcherPanicked,
    /// The ready file could not be written.
    #[error("writing the ready file {path}")]
    ReadyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot work (for example a batch size of zero).
    #[error("configuring the server: {reason}")]
    Config { reason: String },
}

/// What a backend reports when it cannot load, warm up or run a batch.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct BackendError {
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// An error with only a description, e.g. `running a batch: output has 3 rows, expected 4`.
    pub fn msg(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// An error with a description and the underlying cause (for example a `tch::TchError`).
    pub fn with_source(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The description and every cause, joined with ": ", for an HTTP error body.
    pub fn chain_message(&self) -> String {
        let mut message = self.context.clone();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

/// One request refused; the server keeps serving. Each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// 400: the body is not a well-formed tensor (syntax, missing fields, length mismatch).
    #[error("malformed request body: {reason}")]
    Malformed { reason: String },
    /// 408: the body did not arrive within the body read timeout (shorter than its
    /// Content-Length, or the client stopped sending).
    #[error("request body not received within {timeout_s} s (--body-read-timeout)")]
    BodyTimeout { timeout_s: f64 },
    /// 413: the body is larger than the configured limit.
    #[error("request body is {got} but the limit is {limit_bytes} bytes (--max-body-bytes)")]
    TooLarge { limit_bytes: usize, got: String },
    /// 415: neither JSON nor the binary tensor format.
    #[error(
        "unsupported content type {got:?}; expected application/json or application/octet-stream"
    )]
    UnsupportedMediaType { got: String },
    /// 422: a well-formed tensor of the wrong element type.
    #[error("wrong dtype: expected {expected}, got {got}")]
    WrongDtype { expected: String, got: String },
    /// 422: a well-formed tensor of the wrong shape.
    #[error("wrong shape: expected {expected:?} (or {expected_batched:?}), got {got:?}")]
    WrongShape {
        expected: Vec<i64>,
        expected_batched: Vec<i64>,
        got: Vec<i64>,
    },
    /// 422: an index input (token id) outside what the model's table holds.
    #[error("element {position} is {value}, outside the valid ids 0..{limit}")]
    IndexOutOfRange {
        position: usize,
        value: i64,
        limit: i64,
    },
    /// 503: the bounded queue is full.
    #[error("server is overloaded: the request queue is full ({capacity} waiting); retry later")]
    QueueFull { capacity: usize },
    /// 503: the model is still loading or warming up (see /readyz).
    #[error("model is not ready yet (loading or warming up); see /readyz")]
    NotReady,
    /// 503: the server is shutting down and takes no new work.
    #[error("server is shutting down")]
    ShuttingDown,
    /// 500: the backend failed on the batch this request was in.
    #[error("inference failed: {message}")]
    Backend { message: String },
    /// 404: no such route.
    #[error(
        "no route {method} {path}; routes: POST /v1/infer, GET /healthz, GET /readyz, GET /metrics"
    )]
    NotFound { method: String, path: String },
    /// 405: the route exists but not for this method (the Allow header lists the methods).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
}

impl RequestError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed { .. } => StatusCode::BAD_REQUEST,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::WrongDtype { .. } | Self::WrongShape { .. } | Self::IndexOutOfRange { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::QueueFull { .. } | Self::NotReady | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Backend { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}
