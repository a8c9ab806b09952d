//! The hidden `gpushare worker` subcommand: runs one tenant's workload in its own process
//! and speaks the [`protocol`] with the runner, on stdin/stdout (a child of the runner) or
//! over a TCP connection it dials (`dial.rs`: a pod on Kubernetes, `tcp-local` tests).
//!
//! **Invariant:** the protocol stream carries protocol lines only (stdout, when that is
//! the stream); everything human goes to stderr. Nothing is measured before Go arrives,
//! whatever the transport.

mod dial;
pub mod protocol;

pub use dial::{run_connected, DialOptions};

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::limits;
use crate::workload;
use protocol::{FromWorker, StepSample, ToWorker, WorkerSummary, VERSION};

/// Errors that end a worker.
#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("reading the start message: {0}")]
    Start(String),
    #[error(transparent)]
    Protocol(#[from] protocol::ProtocolError),
    #[error(transparent)]
    Workload(#[from] workload::WorkloadError),
    #[error("writing to the runner: {0}")]
    Write(#[from] std::io::Error),
    #[error("waiting for Go: the runner closed the connection")]
    RunnerGone,
    #[error("connecting to the runner at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("joining the runner at {addr}: it refused this worker: {reason}")]
    Refused { addr: String, reason: String },
    #[error("joining the runner at {addr}: {reason}")]
    Handshake { addr: String, reason: String },
}

impl WorkerError {
    /// The worker's exit status for this error, documented in `gpushare worker --help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Workload(_) => 2,
            WorkerError::Start(_)
            | WorkerError::Protocol(_)
            | WorkerError::Refused { .. }
            | WorkerError::Handshake { .. } => 3,
            WorkerError::Write(_) | WorkerError::RunnerGone => 4,
            WorkerError::Connect { .. } => 5,
        }
    }
}

/// The warm-up the start message asks for, checked: a runner of another version could send
/// any number.
pub fn warmup(spec: &protocol::WorkerSpec) -> Result<Duration, WorkerError> {
    limits::run::WARMUP_S
        .check(spec.warmup_s)
        .and_then(limits::duration_from_secs)
        .map_err(|reason| WorkerError::Start(format!("warmup_s {reason}")))
}

/// Runs a worker on this process's stdin and stdout until the runner says Stop.
pub fn run() -> Result<(), WorkerError> {
    // One reader for the whole session: the Start line and the Go/Stop thread share its
    // buffer.
    run_on(
        std::io::BufReader::new(std::io::stdin()),
        std::io::stdout().lock(),
    )
}

/// Runs a worker on any pair of streams (stdin/stdout, a TCP connection's halves) until
/// the runner says Stop. Commands are read from `from_runner`, protocol lines written to
/// `to_runner`.
pub fn run_on(
    mut from_runner: impl BufRead + Send + 'static,
    mut to_runner: impl Write,
) -> Result<(), WorkerError> {
    let mut first = String::new();
    let n = from_runner
        .read_line(&mut first)
        .map_err(|e| WorkerError::Start(e.to_string()))?;
    if n == 0 {
        return Err(WorkerError::Start(
            "the runner closed the connection before the start message".into(),
        ));
    }
    let spec = match protocol::decode_to_worker(first.trim_end())? {
        ToWorker::Start { spec, .. } => spec,
        other => return Err(WorkerError::Start(format!("expected start, got {other:?}"))),
    };

    let out = &mut to_runner;
    let result = serve(&spec, from_runner, out);
    if let Err(WorkerError::Workload(err)) = &result {
        // Best effort: the runner also sees the exit status and stderr.
        let _ = send(
            out,
            &FromWorker::Error {
                v: VERSION,
                message: err.to_string(),
            },
        );
    }
    result
}

fn serve(
    spec: &protocol::WorkerSpec,
    from_runner: impl BufRead + Send + 'static,
    out: &mut impl Write,
) -> Result<(), WorkerError> {
    let prepare_start = Instant::now();
    let mut workload = workload::build(&spec.workload, &spec.params, spec.seed)?;
    workload.prepare(warmup(spec)?)?;
    send(
        out,
        &FromWorker::Ready {
            v: VERSION,
            prepare_s: prepare_start.elapsed().as_secs_f64(),
        },
    )?;

    let control = Control::listen(from_runner);
    let Some(go_at) = control.wait_for_go()? else {
        // Stopped before Go (another tenant failed, or the study was interrupted):
        // nothing was measured.
        return send(
            out,
            &FromWorker::Summary {
                v: VERSION,
                summary: WorkerSummary {
                    window_s: 0.0,
                    steps: 0,
                    items: 0,
                    failed: 0,
                    memory_peak_bytes: workload.memory_peak_bytes(),
                },
            },
        );
    };
    let flush_interval = Duration::from_millis(spec.flush_interval_ms);
    let mut batch: Vec<StepSample> = Vec::with_capacity(1024);
    let mut last_flush = go_at;
    let (mut steps, mut items, mut failed) = (0u64, 0u64, 0u64);
    while control.stop_at().is_none() {
        let start = Instant::now();
        let step = workload.step()?;
        let end = Instant::now();
        let sample = StepSample {
            end_s: (end - go_at).as_secs_f64(),
            step_s: (end - start).as_secs_f64(),
            items: step.items,
            latency_s: step.latency_s,
            failed: step.failed,
        };
        // The step that was running when Stop arrived ends outside the window.
        if let Some(stop_at) = control.stop_at() {
            if end > stop_at {
                break;
            }
        }
        steps += 1;
        items += step.items;
        failed += step.failed;
        batch.push(sample);
        if end - last_flush >= flush_interval {
            flush(out, &mut batch)?;
            last_flush = end;
        }
    }
    flush(out, &mut batch)?;
    let stop_at = control.stop_at().unwrap_or_else(Instant::now);
    send(
        out,
        &FromWorker::Summary {
            v: VERSION,
            summary: WorkerSummary {
                window_s: (stop_at - go_at).as_secs_f64(),
                steps,
                items,
                failed,
                memory_peak_bytes: workload.memory_peak_bytes(),
            },
        },
    )?;
    Ok(())
}

fn flush(out: &mut impl Write, batch: &mut Vec<StepSample>) -> Result<(), WorkerError> {
    if batch.is_empty() {
        return Ok(());
    }
    send(
        out,
        &FromWorker::Samples {
            v: VERSION,
            samples: std::mem::take(batch),
        },
    )
}

fn send(out: &mut impl Write, msg: &FromWorker) -> Result<(), WorkerError> {
    out.write_all(protocol::encode(msg).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Go and Stop from the runner, read on a thread of their own so a step never waits on
/// the stream and Stop is timestamped when it arrives, not when the step ends.
struct Control {
    /// Go's arrival time, or `None` when Stop came first.
    go: mpsc::Receiver<Result<Option<Instant>, WorkerError>>,
    stop: Arc<OnceLock<Instant>>,
}

impl Control {
    fn listen(from_runner: impl BufRead + Send + 'static) -> Control {
        let (go_tx, go) = mpsc::channel();
        let stop = Arc::new(OnceLock::new());
        let stop_writer = Arc::clone(&stop);
        std::thread::spawn(move || {
            for line in from_runner.lines() {
                let Ok(line) = line else { break };
                match protocol::decode_to_worker(&line) {
                    Ok(ToWorker::Go { .. }) => {
                        let _ = go_tx.send(Ok(Some(Instant::now())));
                    }
                    Ok(ToWorker::Stop { .. }) => {
                        let _ = stop_writer.set(Instant::now());
                        let _ = go_tx.send(Ok(None));
                        return;
                    }
                    Ok(ToWorker::Start { .. }) => {}
                    Err(err) => {
                        let _ = go_tx.send(Err(err.into()));
                        return;
                    }
                }
            }
            // The runner is gone (its stream closed without Stop): a worker must never
            // outlive it, so leave now rather than finish the window.
            let _ = writeln!(
                std::io::stderr(),
                "gpushare worker: the runner closed the connection; exiting"
            );
            std::process::exit(4);
        });
        Control { go, stop }
    }

    fn wait_for_go(&self) -> Result<Option<Instant>, WorkerError> {
        self.go.recv().map_err(|_| WorkerError::RunnerGone)?
    }

    fn stop_at(&self) -> Option<Instant> {
        self.stop.get().copied()
    }
}
