//! Errors of the load generator. Failed requests are not errors here: they are counted in
//! the report by kind. These are the failures that stop a load run before it measures.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A load run could not be set up or reported.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL is not an `http://host[:port]/path` URL.
    #[error("parsing the URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// The host name did not resolve.
    #[error("resolving {host}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// Not one connection could be opened before the run (the server is not listening).
    #[error("connecting to {addr} before the run")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP/1 handshake on a fresh connection failed before the run.
    #[error("starting HTTP/1 on a connection to {addr}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    /// `--body FILE` could not be read.
    #[error("reading the request body file {path}")]
    BodyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The settings cannot describe a run (zero rate, zero connections, ...).
    #[error("configuring the load: {reason}")]
    Config { reason: String },
    /// A generator thread could not be started.
    #[error("starting a load generator thread")]
    SpawnThread(#[source] std::io::Error),
    /// A generator thread's tokio runtime could not be built.
    #[error("building a load generator thread's runtime")]
    Runtime(#[source] std::io::Error),
    /// A generator thread or a connection task panicked.
    #[error("running the load: a {task} panicked")]
    TaskPanicked { task: &'static str },
    /// The report could not be serialized.
    #[error("rendering the report as JSON")]
    Json(#[source] serde_json::Error),
    /// The report could not be written to stdout.
    #[error("writing the report")]
    Write(#[source] std::io::Error),
}
