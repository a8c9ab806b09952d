//! The accept loop: one HTTP/1.1 connection per task, with the limits that keep a client
//! from stalling the server.
//!
//! axum's own `serve` exposes none of these limits, so this is the loop it runs (accept,
//! a task per connection on hyper's `http1` server, a watch channel that starts every
//! connection's graceful shutdown) with them added:
//! - **Connection limit**: at most `max_connections` open at once. One accepted beyond it
//!   is answered `503` with `Connection: close` and closed at once, so a client sees a
//!   refusal instead of hanging in the kernel's accept queue; the first refusal after the
//!   server was below the limit is logged on stderr.
//! - **Idle timeout**: a connection on which no byte arrived for `idle_timeout` since it
//!   opened or since its last response is closed (a keep-alive connection nobody uses, or
//!   one opened and never written to).
//! - **Header read timeout**: once the first byte of a request has arrived, its request
//!   line and headers must be complete within `header_read_timeout`, or the connection is
//!   closed (a slowloris client sending its head a byte at a time).
//! - The body read timeout is the handler's (it reads the body): `server.rs`.
//! - **Half-close**: a client that shuts down its sending side after its request still
//!   gets the response (hyper's `half_close`).
//! - **Graceful shutdown, bounded**: when `stop` completes, the listener closes, idle
//!   connections close, and in-flight requests get `shutdown_timeout` to finish; every
//!   connection still open then is dropped.
//!
//! Must not know about routes or the model: it serves whatever router it is given.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower_service::Service;

/// What a connection may take, and how long shutdown may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a connection may stay open with no request arriving.
    pub idle_timeout: Duration,
    /// Longest from a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// Longest in-flight requests get to finish after shutdown starts.
    pub shutdown_timeout: Duration,
}

/// The response to a connection over the limit. Written in one non-blocking write to a
/// connection that has sent nothing yet, so it normally fits the socket buffer.
const LIMIT_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 91\r\n\
\r\n\
{\"error\":\"server is at its connection limit (--max-connections); retry later\",\"status\":503}";

/// Pause after an accept error (out of file descriptors, for instance) before the next
/// accept, so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `stop` completes, then shuts down within
/// `limits.shutdown_timeout`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut at_limit = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(_) => {
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        at_limit = false;
                        connections.spawn(serve_connection(
                            stream,
                            router.clone(),
                            limits,
                            draining.clone(),
                            permit,
                        ));
                    }
                    Err(_) => {
                        if !at_limit {
                            eprintln!(
                                "gpushare serve: connection limit of {} reached \
                                 (--max-connections); answering new connections 503 until \
                                 one closes",
                                limits.max_connections
                            );
                            at_limit = true;
                        }
                        // A refusal that cannot be written is still a refusal.
                        let _ = stream.try_write(LIMIT_RESPONSE);
                    }
                }
            }
        }
    }
    drop(listener);
    // Receivers gone means every connection has already ended.
    let _ = drain.send(true);
    let period = tokio::time::sleep(limits.shutdown_timeout);
    tokio::pin!(period);
    loop {
        tokio::select! {
            joined = connections.join_next() => {
                if joined.is_none() {
                    return;
                }
            }
            () = &mut period => {
                let n_open = connections.len();
                eprintln!(
                    "gpushare serve: shutdown period of {} s over (--shutdown-timeout); \
                     closing {n_open} connection{} still open",
                    limits.shutdown_timeout.as_secs_f64(),
                    if n_open == 1 { "" } else { "s" }
                );
                connections.shutdown().await;
                return;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    mut draining: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = BusyGuard::new(Arc::clone(&activity));
            let mut router = router.clone();
            async move {
                let response = router.call(request).await;
                drop(busy);
                response
            }
        })
    };
    let connection = http1::Builder::new()
        .half_close(true)
        .keep_alive(true)
        // The watchdog below times headers from their first byte; hyper's own timer would
        // also count the idle time before it.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let watchdog = activity.expired(limits);
    tokio::pin!(watchdog);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            // An error is the client's doing (reset, malformed head); nothing to report.
            _ = connection.as_mut() => return,
            changed = draining.changed(), if !shutting_down => {
                // A closed channel means the server is gone; shut down either way.
                let _ = changed;
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
            () = &mut watchdog => return,
        }
    }
}

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request (since it opened or its last response).
    Idle,
    /// Bytes of a request head have arrived; the head is not complete yet.
    Head,
    /// This many requests are in the handler (the body read has its own timeout there).
    Busy(usize),
}

#[derive(Debug)]
struct Activity {
    state: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new((Phase::Idle, Instant::now())),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Option<Phase>) {
        // A poisoned lock means a panic while updating two plain values; keep going.
        let mut state = self.state.lock().unwrap_or_else(|err| err.into_inner());
        if let Some(next) = change(state.0) {
            *state = (next, Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn bytes_arrived(&self) {
        self.update(|phase| (phase == Phase::Idle).then_some(Phase::Head));
    }

    fn request_started(&self) {
        self.update(|phase| match phase {
            Phase::Busy(n) => Some(Phase::Busy(n + 1)),
            Phase::Idle | Phase::Head => Some(Phase::Busy(1)),
        });
    }

    fn request_finished(&self) {
        self.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Some(Phase::Busy(n - 1)),
            _ => Some(Phase::Idle),
        });
    }

    /// When the current phase times out; `None` while a request is in the handler.
    fn deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(|err| err.into_inner());
        let (phase, since) = *state;
        match phase {
            Phase::Idle => since.checked_add(limits.idle_timeout),
            Phase::Head => since.checked_add(limits.header_read_timeout),
            Phase::Busy(_) => None,
        }
    }

    /// Completes when the connection has been idle, or reading a head, for too long.
    async fn expired(&self, limits: ConnectionLimits) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the deadline is read, so no change can slip between them.
            changed.as_mut().enable();
            match self.deadline(limits) {
                Some(deadline) if Instant::now() >= deadline => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline.into()) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// Marks a request as in the handler for as long as it lives.
struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.request_started();
        Self(activity)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A socket that tells its [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_limit_response_is_well_formed_json_with_its_length() {
        let text = std::str::from_utf8(LIMIT_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 503);
    }

    #[test]
    fn the_deadline_follows_the_phase() {
        let activity = Activity::new();
        let opened = activity.deadline(limits()).unwrap();
        activity.bytes_arrived();
        let head = activity.deadline(limits()).unwrap();
        // The head's 10 s run from its first byte, earlier than the idle 60 s.
        assert!(head < opened, "{head:?} vs {opened:?}");
        activity.request_started();
        activity.request_started();
        assert_eq!(activity.deadline(limits()), None);
        activity.request_finished();
        assert_eq!(activity.deadline(limits()), None);
        activity.request_finished();
        let idle = activity.deadline(limits()).unwrap();
        assert!(idle > head);
        // More bytes while a head is being read do not restart its clock.
        activity.bytes_arrived();
        let head = activity.deadline(limits()).unwrap();
        activity.bytes_arrived();
        assert_eq!(activity.deadline(limits()), Some(head));
    }
}
