//! `tcp` and `tcp-local`: workers dial the runner instead of being its children. The
//! runner listens; a worker connects, sends a hello line (protocol version, the study's
//! token, its tenant) and, once accepted, speaks the same protocol over the connection as
//! a child does over stdin/stdout. `spawn` yields the connection of a worker for the
//! tenant asked for, within the accept timeout.
//!
//! With `tcp` (Kubernetes) the workers are pods that dial on their own; with `tcp-local`
//! the backend starts each worker itself as a child that dials back over loopback, so the
//! transport runs with real workers on any machine.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;
use tokio::sync::{watch, Notify};

use super::{
    BoxFuture, Isolation, IsolationError, WorkerConnection, WorkerExit, WorkerHandle, WorkerLaunch,
};
use crate::worker::protocol::{self, Handshake, HandshakeReply, VERSION};

/// How long a connection may take to send its hello line.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest hello line accepted, in bytes.
const HELLO_MAX_BYTES: u64 = 4096;
/// Refusals kept for the message of a tenant that never joined.
const REFUSALS_KEPT: usize = 8;

/// Workers that dial in over TCP.
pub struct TcpIsolation {
    addr: SocketAddr,
    token: String,
    accept_timeout: Duration,
    /// `tcp-local`: start each worker as a child running this executable.
    local_exe: Option<PathBuf>,
    lobby: Arc<Lobby>,
    accept_task: tokio::task::JoinHandle<()>,
}

/// Accepted workers waiting to be given a run, by tenant, and recent refusals.
#[derive(Default)]
struct Lobby {
    state: Mutex<LobbyState>,
    joined: Notify,
}

#[derive(Default)]
struct LobbyState {
    waiting: HashMap<String, VecDeque<Joined>>,
    refusals: VecDeque<String>,
}

/// A worker that passed the handshake.
struct Joined {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// A second handle on the socket, to shut it down when the runner kills the worker.
    socket: std::net::TcpStream,
}

impl TcpIsolation {
    /// Listens on `addr` (`0.0.0.0:7070`; port 0 picks one) for workers carrying `token`.
    /// With `local_exe`, `spawn` starts each worker itself (`tcp-local`).
    pub async fn listen(
        addr: &str,
        token: String,
        accept_timeout: Duration,
        local_exe: Option<PathBuf>,
    ) -> Result<TcpIsolation, IsolationError> {
        let listen_err = |source| IsolationError::Listen {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
        let bound = listener.local_addr().map_err(listen_err)?;
        let lobby = Arc::new(Lobby::default());
        let accept_task = tokio::spawn(accept_loop(listener, token.clone(), Arc::clone(&lobby)));
        Ok(TcpIsolation {
            addr: bound,
            token,
            accept_timeout,
            local_exe,
            lobby,
            accept_task,
        })
    }

    /// The address workers dial.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a `tcp-local` worker: this executable's `worker --connect` over loopback.
    fn start_local(
        &self,
        exe: &PathBuf,
        launch: &WorkerLaunch<'_>,
    ) -> Result<Child, IsolationError> {
        let dial = if self.addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.addr.port())
        } else {
            self.addr
        };
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("worker")
            .arg("--connect")
            .arg(dial.to_string())
            .arg("--tenant")
            .arg(launch.tenant)
            .arg("--dial-timeout-s")
            .arg(self.accept_timeout.as_secs_f64().to_string())
            .env("GPUSHARE_TOKEN", &self.token)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        super::own_worker(&mut cmd);
        cmd.spawn().map_err(|source| IsolationError::SpawnProcess {
            tenant: launch.tenant.to_string(),
            source,
        })
    }

    fn no_worker_error(&self, tenant: &str) -> IsolationError {
        let state = self.lobby.lock();
        let refused = if state.refusals.is_empty() {
            String::new()
        } else {
            let list: Vec<&str> = state.refusals.iter().map(String::as_str).collect();
            format!("; refused: {}", list.join("; "))
        };
        IsolationError::NoWorker {
            tenant: tenant.to_string(),
            addr: self.addr,
            timeout_s: self.accept_timeout.as_secs_f64(),
            refused,
        }
    }
}

impl Drop for TcpIsolation {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl Lobby {
    fn lock(&self) -> std::sync::MutexGuard<'_, LobbyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, tenant: &str) -> Option<Joined> {
        self.lock().waiting.get_mut(tenant)?.pop_front()
    }

    fn refuse(&self, reason: String) {
        let mut state = self.lock();
        if state.refusals.len() == REFUSALS_KEPT {
            state.refusals.pop_front();
        }
        state.refusals.push_back(reason);
    }
}

async fn accept_loop(listener: TcpListener, token: String, lobby: Arc<Lobby>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors or similar: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let token = token.clone();
        let lobby = Arc::clone(&lobby);
        tokio::spawn(async move {
            match handshake(stream, &token).await {
                Ok((tenant, joined)) => {
                    lobby
                        .lock()
                        .waiting
                        .entry(tenant)
                        .or_default()
                        .push_back(joined);
                    lobby.joined.notify_waiters();
                }
                Err(reason) => lobby.refuse(format!("a worker from {peer}: {reason}")),
            }
        });
    }
}

/// Reads a worker's hello and answers it; a refused worker is told why and closed.
async fn handshake(stream: TcpStream, token: &str) -> Result<(String, Joined), String> {
    let _ = stream.set_nodelay(true);
    let std_stream = stream
        .into_std()
        .map_err(|e| format!("reading its socket: {e}"))?;
    let socket = std_stream
        .try_clone()
        .map_err(|e| format!("reading its socket: {e}"))?;
    let stream = TcpStream::from_std(std_stream).map_err(|e| format!("reading its socket: {e}"))?;
    let (read, mut writer) = stream.into_split();
    let mut limited = BufReader::new(read).take(HELLO_MAX_BYTES);
    let mut line = String::new();
    let read = tokio::time::timeout(HELLO_TIMEOUT, limited.read_line(&mut line)).await;
    let reader = limited.into_inner();
    let hello = match read {
        Err(_) => {
            return Err(format!(
                "sent no hello within {} s",
                HELLO_TIMEOUT.as_secs()
            ))
        }
        Ok(Err(e)) => return Err(format!("reading its hello: {e}")),
        Ok(Ok(_)) => serde_json::from_str::<Handshake>(line.trim_end()),
    };
    let verdict = match hello {
        Err(e) => Err((format!("not a hello line: {e}"), None)),
        Ok(Handshake::Hello { v, .. }) if v != VERSION => Err((
            format!("speaks protocol version {v}, this runner version {VERSION}"),
            None,
        )),
        Ok(Handshake::Hello {
            token: theirs,
            tenant,
            ..
        }) => {
            if same_secret(&theirs, token) {
                Ok(tenant)
            } else {
                Err(("wrong token".to_string(), Some(tenant)))
            }
        }
    };
    match verdict {
        Ok(tenant) => {
            let reply = protocol::encode(&HandshakeReply::Accepted { v: VERSION });
            writer
                .write_all(reply.as_bytes())
                .await
                .map_err(|e| format!("answering its hello: {e}"))?;
            Ok((
                tenant,
                Joined {
                    reader,
                    writer,
                    socket,
                },
            ))
        }
        Err((reason, tenant)) => {
            let reply = protocol::encode(&HandshakeReply::Refused {
                v: VERSION,
                reason: reason.clone(),
            });
            let _ = writer.write_all(reply.as_bytes()).await;
            let _ = writer.shutdown().await;
            Err(match tenant {
                Some(tenant) => format!("{reason} (tenant `{tenant}`)"),
                None => reason,
            })
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Isolation for TcpIsolation {
    fn name(&self) -> &'static str {
        if self.local_exe.is_some() {
            "tcp-local"
        } else {
            "tcp"
        }
    }

    fn mode_set_up_by_platform(&self) -> bool {
        // Remote workers run where the runner cannot start an MPS daemon or pick a MIG
        // instance; `tcp-local` children share the runner's host, as processes do.
        self.local_exe.is_none()
    }

    fn spawn<'a>(
        &'a self,
        launch: &'a WorkerLaunch<'a>,
    ) -> BoxFuture<'a, Result<WorkerConnection, IsolationError>> {
        Box::pin(async move {
            let mut child = match &self.local_exe {
                Some(exe) => {
                    // A worker of an earlier run that joined too late is not this one.
                    self.lobby.lock().waiting.remove(launch.tenant);
                    Some(self.start_local(exe, launch)?)
                }
                None => None,
            };
            let deadline = tokio::time::Instant::now() + self.accept_timeout;
            let joined = loop {
                let joined_now = self.lobby.joined.notified();
                if let Some(joined) = self.lobby.take(launch.tenant) {
                    break joined;
                }
                if let Some(child) = child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(IsolationError::ExitedBeforeJoining {
                            tenant: launch.tenant.to_string(),
                            status: status.to_string(),
                        });
                    }
                }
                tokio::select! {
                    _ = joined_now => {}
                    // A local child that exits before joining is noticed within this.
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(self.no_worker_error(launch.tenant));
                    }
                }
            };
            let (closed_tx, closed_rx) = watch::channel(false);
            let diagnostics = child
                .as_mut()
                .and_then(|c| c.stderr.take())
                .map(|e| Box::new(e) as _);
            let handle: Box<dyn WorkerHandle> = match child {
                Some(child) => Box::new(LocalHandle {
                    child,
                    socket: joined.socket,
                }),
                None => Box::new(RemoteHandle {
                    closed: closed_rx,
                    socket: joined.socket,
                }),
            };
            Ok(WorkerConnection {
                from_worker: Box::new(WatchEof {
                    inner: joined.reader,
                    closed: closed_tx,
                }),
                to_worker: Box::new(joined.writer),
                diagnostics,
                handle,
            })
        })
    }
}

/// The protocol stream from a worker, telling its handle when it ends (cleanly or not).
struct WatchEof<R> {
    inner: R,
    /// Set to true at end of stream or on a read error.
    closed: watch::Sender<bool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for WatchEof<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let ended = match &polled {
            Poll::Ready(Ok(())) => buf.filled().len() == before,
            Poll::Ready(Err(_)) => true,
            Poll::Pending => false,
        };
        if ended {
            let _ = self.closed.send(true);
        }
        polled
    }
}

impl<R> Drop for WatchEof<R> {
    fn drop(&mut self) {
        let _ = self.closed.send(true);
    }
}

/// A `tcp-local` worker: a child of the runner, so its exit status is known.
struct LocalHandle {
    child: Child,
    socket: std::net::TcpStream,
}

impl WorkerHandle for LocalHandle {
    fn wait(&mut self) -> BoxFuture<'_, Option<WorkerExit>> {
        Box::pin(async move {
            let status = self.child.wait().await.ok()?;
            #[cfg(unix)]
            let signal = std::os::unix::process::ExitStatusExt::signal(&status);
            #[cfg(not(unix))]
            let signal = None;
            Some(WorkerExit {
                code: status.code(),
                signal,
            })
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.socket.shutdown(std::net::Shutdown::Both);
            let _ = self.child.start_kill();
        })
    }
}

/// A worker elsewhere (a pod): the runner sees its connection, not its process. A
/// connection that ends reads as a clean exit; a worker that dies before its Summary
/// is caught by the protocol (its stream closes before Stop was answered).
struct RemoteHandle {
    closed: watch::Receiver<bool>,
    socket: std::net::TcpStream,
}

impl WorkerHandle for RemoteHandle {
    fn wait(&mut self) -> BoxFuture<'_, Option<WorkerExit>> {
        Box::pin(async move {
            // An error means the sender is gone, which happens only once the stream ended.
            let _ = self.closed.wait_for(|closed| *closed).await;
            Some(WorkerExit {
                code: Some(0),
                signal: None,
            })
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.socket.shutdown(std::net::Shutdown::Both);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    async fn dial(addr: SocketAddr, hello: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(hello.as_bytes()).await.unwrap();
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn a_worker_with_the_wrong_token_is_told_and_named_in_the_timeout() {
        let tcp = TcpIsolation::listen(
            "127.0.0.1:0",
            "secret".into(),
            Duration::from_millis(300),
            None,
        )
        .await
        .unwrap();
        let reply = dial(
            tcp.local_addr(),
            "{\"msg\":\"hello\",\"v\":1,\"token\":\"guess\",\"tenant\":\"a\"}\n",
        )
        .await;
        assert_eq!(
            reply,
            "{\"msg\":\"refused\",\"v\":1,\"reason\":\"wrong token\"}\n"
        );
        let env = [];
        let launch = WorkerLaunch {
            tenant: "a",
            run_id: "r",
            env: &env,
            gpu: false,
        };
        let err = tcp.spawn(&launch).await.err().unwrap().to_string();
        let peer_free = err.split("a worker from").next().unwrap();
        assert_eq!(
            peer_free,
            format!(
                "waiting for the worker of tenant `a` to connect to {}: none joined within 0.3 s; refused: ",
                tcp.local_addr()
            )
        );
        assert!(err.ends_with(": wrong token (tenant `a`)"), "{err}");
    }

    #[tokio::test]
    async fn another_protocol_version_is_refused() {
        let tcp = TcpIsolation::listen("127.0.0.1:0", "t".into(), Duration::from_millis(100), None)
            .await
            .unwrap();
        let reply = dial(
            tcp.local_addr(),
            "{\"msg\":\"hello\",\"v\":9,\"token\":\"t\",\"tenant\":\"a\"}\n",
        )
        .await;
        assert_eq!(
            reply,
            "{\"msg\":\"refused\",\"v\":1,\"reason\":\"speaks protocol version 9, this runner version 1\"}\n"
        );
    }

    #[tokio::test]
    async fn an_accepted_worker_is_yielded_for_its_tenant_and_its_end_is_seen() {
        let tcp = TcpIsolation::listen("127.0.0.1:0", "t".into(), Duration::from_secs(5), None)
            .await
            .unwrap();
        let addr = tcp.local_addr();
        let worker = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"{\"msg\":\"hello\",\"v\":1,\"token\":\"t\",\"tenant\":\"b\"}\n")
                .await
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "{\"msg\":\"accepted\",\"v\":1}\n");
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            line
        });
        let env = [];
        let launch = WorkerLaunch {
            tenant: "b",
            run_id: "r",
            env: &env,
            gpu: false,
        };
        let mut conn = tcp.spawn(&launch).await.unwrap();
        conn.to_worker
            .write_all(b"{\"msg\":\"go\",\"v\":1}\n")
            .await
            .unwrap();
        assert_eq!(worker.await.unwrap(), "{\"msg\":\"go\",\"v\":1}\n");
        // The worker task has ended and dropped its socket: the stream ends, and so does
        // the wait.
        let mut rest = vec![];
        conn.from_worker.read_to_end(&mut rest).await.unwrap();
        assert_eq!(
            conn.handle.wait().await,
            Some(WorkerExit {
                code: Some(0),
                signal: None
            })
        );
    }
}
