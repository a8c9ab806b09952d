//! A server that cannot be stalled, on 127.0.0.1 with small limits so that every case
//! takes at most a few seconds: idle and half-sent connections are closed after their
//! timeouts, a short body is answered 408, a half-closed client still gets its answer,
//! connections over the limit are refused with 503 and logged while the server recovers,
//! shutdown drops what is still open after its period, and a second signal exits at once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gpushare::serve::{ConnectionLimits, DelayBackend, ServeConfig};
use hyper::StatusCode;

use crate::support::{get, json_item, TestServer};

fn limits(idle_ms: u64, header_ms: u64) -> ServeConfig {
    let defaults = ServeConfig::default();
    ServeConfig {
        max_queue_delay: Duration::ZERO,
        limits: ConnectionLimits {
            idle_timeout: Duration::from_millis(idle_ms),
            header_read_timeout: Duration::from_millis(header_ms),
            ..defaults.limits
        },
        ..defaults
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent and how long the
/// close took from `since`. A reset counts as a close.
fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (Vec<u8>, Duration) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("reading: {err} after {:?}", since.elapsed()),
        }
    }
    (received, since.elapsed())
}

fn infer_request(body: &str, content_length: usize) -> String {
    format!(
        "POST /v1/infer HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n{body}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let server =
        TestServer::start_ready(limits(300, 5000), DelayBackend::new(4, Duration::ZERO)).await;
    let addr = server.addr;
    let (received, took) = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        read_until_closed(&mut stream, Instant::now())
    })
    .await
    .unwrap();
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    // A keep-alive connection left idle after a request is closed the same way.
    let (received, took) = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        let request = "GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        read_until_closed(&mut stream, Instant::now())
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_a_byte_at_a_time_is_cut_off_by_the_header_read_timeout() {
    // The idle timeout is long: only the header timeout can end this connection.
    let server =
        TestServer::start_ready(limits(30_000, 400), DelayBackend::new(4, Duration::ZERO)).await;
    let addr = server.addr;
    let (sent, took) = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        let head = b"POST /v1/infer HTTP/1.1\r\nhost: test\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let started = Instant::now();
        let mut sent = 0;
        for byte in head {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        let (_, took) = read_until_closed(&mut stream, started);
        (sent, took)
    })
    .await
    .unwrap();
    // 400 ms at 50 ms a byte: about 8 bytes, far from the whole head.
    assert!(sent < 40, "{sent} bytes were accepted");
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_shorter_than_its_content_length_is_answered_408() {
    let config = ServeConfig {
        body_read_timeout: Duration::from_millis(300),
        ..limits(30_000, 30_000)
    };
    let server = TestServer::start_ready(config, DelayBackend::new(4, Duration::ZERO)).await;
    let addr = server.addr;
    let (received, took) = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        let body = json_item(4, 1.0);
        // Half the body, and a Content-Length saying there is more.
        let request = infer_request(&body[..body.len() / 2], body.len());
        stream.write_all(request.as_bytes()).unwrap();
        read_until_closed(&mut stream, Instant::now())
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(
        text.ends_with(
            r#"{"error":"request body not received within 0.3 s (--body-read-timeout)","status":408}"#
        ),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let server = TestServer::start_ready(
        limits(30_000, 30_000),
        DelayBackend::new(4, Duration::from_millis(50)),
    )
    .await;
    let addr = server.addr;
    let received = tokio::task::spawn_blocking(move || {
        let mut stream = connect(addr);
        let body = json_item(4, 1.0);
        stream
            .write_all(infer_request(&body, body.len()).as_bytes())
            .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        read_until_closed(&mut stream, Instant::now()).0
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.ends_with(r#"{"batch_size":1,"outputs":{"data":[4.0],"dtype":"f32","shape":[1]}}"#),
        "{text}"
    );
    server.stop().await.unwrap();
}

/// `gpushare serve` as a child process with stderr captured, and its address.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    fn start(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let child = Command::new(env!("CARGO_BIN_EXE_gpushare"))
            .args(["serve", "--bind", "127.0.0.1:0", "--max-queue-delay", "0ms"])
            .arg("--ready-file")
            .arg(&ready)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "no ready file");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits at most `limit` for the exit; returns its code, how long it took and stderr.
    fn wait(mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("gpushare serve still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code(), started.elapsed(), stderr)
    }
}

/// Sends a request that the 5 s backend will hold in flight.
fn start_slow_request(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    let body = json_item(4, 1.0);
    stream
        .write_all(infer_request(&body, body.len()).as_bytes())
        .unwrap();
    // Let the request reach the backend before any signal.
    std::thread::sleep(Duration::from_millis(300));
    stream
}

#[test]
fn connections_over_the_limit_are_refused_and_logged_and_the_server_recovers() {
    let server = ServeProcess::start(&[
        "--max-connections",
        "20",
        "--idle-timeout",
        "2s",
        "--header-read-timeout",
        "2s",
    ]);
    // 300 connections that stall: the first 20, within the limit, send half a request
    // line; the rest send nothing (so the refusal is never reset by unread bytes).
    let mut held = Vec::new();
    let mut refused = 0;
    for idx in 0..300 {
        let mut stream = connect(server.addr);
        if idx < 20 {
            stream.write_all(b"GET /heal").unwrap();
        }
        held.push(stream);
    }
    let started = Instant::now();
    for stream in &mut held[20..] {
        let (received, _) = read_until_closed(stream, started);
        if String::from_utf8_lossy(&received).starts_with("HTTP/1.1 503 Service Unavailable") {
            refused += 1;
        }
    }
    // Every one past the limit was refused at once, not left hanging.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(refused >= 250, "only {refused} of 280 got a 503");
    // The stalled 20 are cut off by the header timeout, and the server answers again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answered = loop {
        let mut stream = connect(server.addr);
        let _ =
            stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        let (received, _) = read_until_closed(&mut stream, Instant::now());
        let text = String::from_utf8_lossy(&received).into_owned();
        if text.starts_with("HTTP/1.1 200 OK") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answered.starts_with("HTTP/1.1 200 OK"), "{answered}");
    drop(held);
    server.signal(libc::SIGTERM);
    let (code, _, stderr) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    // Logged when the limit is reached, not for every refusal (again only if the server
    // was below it in between, as a slow machine may make it).
    let logged: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("connection limit"))
        .collect();
    assert!(!logged.is_empty() && logged.len() < 10, "{stderr}");
    for line in logged {
        assert_eq!(
            line,
            "gpushare serve: connection limit of 20 reached (--max-connections); answering \
             new connections 503 until one closes"
        );
    }
}

#[test]
fn shutdown_drops_what_is_still_open_after_its_period() {
    let server = ServeProcess::start(&["--delay", "5s", "--shutdown-timeout", "500ms"]);
    let mut stalled = start_slow_request(server.addr);
    server.signal(libc::SIGTERM);
    let (code, took, stderr) = server.wait(Duration::from_secs(4));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        took >= Duration::from_millis(400),
        "exited after {took:?}: {stderr}"
    );
    assert!(
        stderr.contains(
            "gpushare serve: shutdown period of 0.5 s over (--shutdown-timeout); closing 1 \
             connection still open"
        ),
        "{stderr}"
    );
    // The dropped connection was closed without an answer.
    let (received, _) = read_until_closed(&mut stalled, Instant::now());
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let server = ServeProcess::start(&["--delay", "5s", "--shutdown-timeout", "30s"]);
    let _stalled = start_slow_request(server.addr);
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    // Still draining: the request has seconds to go and the period is 30 s.
    server.signal(libc::SIGINT);
    let (code, took, stderr) = server.wait(Duration::from_secs(3));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(took < Duration::from_secs(2), "exited after {took:?}");
    assert!(
        stderr.contains("gpushare serve: second signal, exiting now"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_still_answers_while_idle_connections_are_held() {
    // Below the limit, held connections cost nothing: requests on new ones are answered.
    let config = ServeConfig {
        limits: ConnectionLimits {
            max_connections: 64,
            ..limits(30_000, 30_000).limits
        },
        ..limits(30_000, 30_000)
    };
    let server = TestServer::start_ready(config, DelayBackend::new(4, Duration::ZERO)).await;
    let addr = server.addr;
    let held: Vec<TcpStream> =
        tokio::task::spawn_blocking(move || (0..50).map(|_| connect(addr)).collect())
            .await
            .unwrap();
    assert_eq!(get(addr, "/healthz").await.status, StatusCode::OK);
    drop(held);
    server.stop().await.unwrap();
}
