//! One keep-alive HTTP/1.1 connection and the outcome of one request on it.
//!
//! Built on hyper's connection-level API rather than a pooled client: a run owns exactly
//! `--connections` connections, each used by one task, as wrk does, so the number of
//! sockets (and the load's shape) never depends on pool heuristics, and a request costs
//! no pool lookup. A connection that failed or timed out is dropped and reopened on its
//! next request. Must not record statistics; callers do.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::LoadError;

/// Everything needed to build the same request again and again.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    method: Method,
    path_and_query: Uri,
    host: HeaderValue,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl Endpoint {
    /// Resolves the URL's host (the first address wins) and prepares the request parts.
    pub async fn resolve(
        uri: &Uri,
        method: Method,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Self, LoadError> {
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(80);
        let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
        let addr = tokio::net::lookup_host((host_for_lookup, port))
            .await
            .map_err(|source| LoadError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .next()
            .ok_or_else(|| LoadError::Resolve {
                host: host.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
        let invalid = |reason: String| LoadError::Url {
            url: uri.to_string(),
            reason,
        };
        let authority = uri
            .authority()
            .map(|authority| authority.as_str())
            .unwrap_or(host);
        let path_and_query = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
            .parse::<Uri>()
            .map_err(|err| invalid(format!("{err}")))?;
        Ok(Self {
            addr,
            method,
            path_and_query,
            host: HeaderValue::from_str(authority).map_err(|err| invalid(format!("{err}")))?,
            content_type: content_type
                .map(HeaderValue::from_str)
                .transpose()
                .map_err(|err| invalid(format!("content type: {err}")))?,
            body,
        })
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path_and_query.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if let Some(content_type) = &self.content_type {
            headers.insert(CONTENT_TYPE, content_type.clone());
        }
        request
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx response, body read completely.
    Ok,
    /// A response with another status (4xx, 5xx, ...), body read completely.
    Status(u16),
    /// The connection could not be (re)opened.
    Connect,
    /// No complete response within the timeout.
    Timeout,
    /// The connection broke while the request was in flight.
    Io,
}

/// A connection that reopens itself when needed.
pub(crate) struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The request timeout, one timer re-armed for every request: a fresh tokio timer per
    /// request would wake the runtime's driver (an eventfd write and an extra epoll round)
    /// whenever it is the only timer, which on an idle-between-requests thread is always.
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Connection {
    /// Opens a connection now (used before the run starts). Must run inside a runtime.
    pub async fn open(endpoint: &Endpoint) -> Result<Self, LoadError> {
        let sender = handshake(endpoint).await?;
        Ok(Self {
            sender: Some(sender),
            ..Self::closed()
        })
    }

    /// A connection that opens on its first request. Must run inside a runtime.
    pub fn closed() -> Self {
        Self {
            sender: None,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        }
    }

    /// Whether the connection is currently not open.
    pub fn is_closed(&self) -> bool {
        self.sender.is_none()
    }

    /// Sends one request and reads the whole response, within `timeout` of the send.
    pub async fn send(&mut self, endpoint: &Endpoint, timeout: Duration) -> Outcome {
        self.deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + timeout);
        let outcome = tokio::select! {
            biased;
            outcome = send_on(&mut self.sender, endpoint) => outcome,
            () = &mut self.deadline => Outcome::Timeout,
        };
        if outcome == Outcome::Timeout {
            // Its response may still arrive; the connection can no longer be reused.
            self.sender = None;
        }
        outcome
    }
}

async fn send_on(sender: &mut Option<SendRequest<Full<Bytes>>>, endpoint: &Endpoint) -> Outcome {
    let Some(ready) = ready_sender(sender, endpoint).await else {
        return Outcome::Connect;
    };
    let response = match ready.send_request(endpoint.request()).await {
        Ok(response) => response,
        Err(_) => {
            *sender = None;
            return Outcome::Io;
        }
    };
    let status = response.status();
    if response.into_body().collect().await.is_err() {
        *sender = None;
        return Outcome::Io;
    }
    if status.is_success() {
        Outcome::Ok
    } else {
        Outcome::Status(status.as_u16())
    }
}

/// The sender, reopening the connection if the server closed it since the last request
/// (keep-alive timeout, `Connection: close`); `None` when it cannot be reopened.
async fn ready_sender<'a>(
    sender: &'a mut Option<SendRequest<Full<Bytes>>>,
    endpoint: &Endpoint,
) -> Option<&'a mut SendRequest<Full<Bytes>>> {
    if let Some(open) = sender {
        if open.is_closed() || open.ready().await.is_err() {
            *sender = None;
        }
    }
    if sender.is_none() {
        *sender = handshake(endpoint).await.ok();
    }
    sender.as_mut()
}

async fn handshake(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, LoadError> {
    let stream = TcpStream::connect(endpoint.addr)
        .await
        .map_err(|source| LoadError::Connect {
            addr: endpoint.addr,
            source,
        })?;
    // Requests are small and latency-bound: never wait for Nagle's algorithm.
    stream
        .set_nodelay(true)
        .map_err(|source| LoadError::Connect {
            addr: endpoint.addr,
            source,
        })?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| LoadError::Handshake {
            addr: endpoint.addr,
            source,
        })?;
    // The connection task ends when the sender is dropped or the server closes it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
