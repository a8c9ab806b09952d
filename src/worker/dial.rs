//! The worker's side of the TCP transport: dial the runner, introduce itself with the
//! study's token and its tenant, then speak the protocol over the connection exactly as
//! on stdin/stdout. A pod on Kubernetes cannot be the runner's child, so it dials.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

use super::protocol::{self, Handshake, HandshakeReply, VERSION};
use super::WorkerError;

/// How long a worker waits for the runner's answer to its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two attempts to reach a runner that is not listening yet.
const DIAL_RETRY: Duration = Duration::from_millis(200);
/// The exit status of a session that could not reach the runner (see `WorkerError`).
const EXIT_CONNECT: i32 = 5;

/// Where and as whom a worker dials.
#[derive(Debug, Clone)]
pub struct DialOptions {
    /// The runner's address, `HOST:PORT`.
    pub addr: String,
    /// The study's shared secret.
    pub token: String,
    /// The tenant instance this worker runs.
    pub tenant: String,
    /// How long to keep trying to reach the runner before giving up.
    pub dial_timeout: Duration,
    /// Serve one session after another, each in a fresh child process, until the runner
    /// stays unreachable for `dial_timeout` (a pod serving every run of a study).
    pub redial: bool,
}

/// Runs one session (or, with `redial`, sessions until the runner is gone) over TCP.
pub fn run_connected(opts: &DialOptions) -> Result<(), WorkerError> {
    if opts.redial {
        redial(opts)
    } else {
        session(opts)
    }
}

fn session(opts: &DialOptions) -> Result<(), WorkerError> {
    let stream = dial(&opts.addr, opts.dial_timeout)?;
    // Samples are small lines flushed every 100 ms; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let connect_err = |source| WorkerError::Connect {
        addr: opts.addr.clone(),
        source,
    };
    let mut to_runner = stream.try_clone().map_err(connect_err)?;
    let hello = Handshake::Hello {
        v: VERSION,
        token: opts.token.clone(),
        tenant: opts.tenant.clone(),
    };
    to_runner.write_all(protocol::encode(&hello).as_bytes())?;
    to_runner.flush()?;

    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(connect_err)?;
    let mut from_runner = BufReader::new(stream);
    let mut line = String::new();
    let handshake_err = |reason: String| WorkerError::Handshake {
        addr: opts.addr.clone(),
        reason,
    };
    let n = from_runner
        .read_line(&mut line)
        .map_err(|e| handshake_err(format!("reading the runner's answer: {e}")))?;
    if n == 0 {
        return Err(handshake_err(
            "the runner closed the connection before answering".into(),
        ));
    }
    match serde_json::from_str::<HandshakeReply>(line.trim_end()) {
        Ok(HandshakeReply::Accepted { v }) if v == VERSION => {}
        Ok(HandshakeReply::Accepted { v }) => {
            return Err(handshake_err(format!(
                "the runner speaks protocol version {v}, this binary version {VERSION}"
            )))
        }
        Ok(HandshakeReply::Refused { reason, .. }) => {
            return Err(WorkerError::Refused {
                addr: opts.addr.clone(),
                reason,
            })
        }
        Err(e) => return Err(handshake_err(format!("decoding the runner's answer: {e}"))),
    }
    // From here on the worker may wait for Start as long as the runner needs (other runs
    // of the study come first).
    from_runner
        .get_ref()
        .set_read_timeout(None)
        .map_err(connect_err)?;
    super::run_on(from_runner, to_runner)
}

/// Connects, retrying until `timeout`: a pod may start before the runner listens or
/// before its Service name resolves.
fn dial(addr: &str, timeout: Duration) -> Result<TcpStream, WorkerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = addr.to_socket_addrs().and_then(|mut addrs| {
            addrs
                .next()
                .ok_or_else(|| std::io::Error::other("the name resolves to no address"))
                .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)))
        });
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(source) if Instant::now() >= deadline => {
                return Err(WorkerError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
            Err(_) => std::thread::sleep(DIAL_RETRY),
        }
    }
}

/// One session per child process, so every run gets a fresh worker (a fresh CUDA
/// context) as it does with pipes. Ends when a session could not reach the runner.
fn redial(opts: &DialOptions) -> Result<(), WorkerError> {
    let exe = std::env::current_exe().map_err(|source| WorkerError::Connect {
        addr: opts.addr.clone(),
        source,
    })?;
    loop {
        let mut cmd = Command::new(&exe);
        cmd.args(["worker", "--connect", &opts.addr, "--tenant", &opts.tenant])
            .arg("--dial-timeout-s")
            .arg(opts.dial_timeout.as_secs_f64().to_string())
            .env("GPUSHARE_TOKEN", &opts.token);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: die_with_parent is async-signal-safe (one prctl call).
            unsafe {
                cmd.pre_exec(crate::isolation::die_with_parent);
            }
        }
        let status = cmd.status().map_err(|source| WorkerError::Connect {
            addr: opts.addr.clone(),
            source,
        })?;
        if status.code() == Some(EXIT_CONNECT) {
            let _ = writeln!(
                std::io::stderr(),
                "gpushare worker: the runner at {} is gone; the study is over",
                opts.addr
            );
            return Ok(());
        }
    }
}
