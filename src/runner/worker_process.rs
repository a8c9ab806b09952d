//! One running worker as the runner sees it, whatever its isolation backend: the stream
//! commands go down, reader tasks that turn the protocol stream into events and keep the
//! tail of its diagnostics, and the backend's handle to wait for or end it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::RunnerError;
use crate::isolation::{Isolation, WorkerHandle, WorkerLaunch};
use crate::results::schema::ExitRecord;
use crate::worker::protocol::{self, FromWorker, ToWorker, WorkerSpec, VERSION};

/// Lines of a worker's stderr kept for failure reports.
const STDERR_TAIL_LINES: usize = 20;

/// Something a worker said or did, tagged with its index in the run.
#[derive(Debug)]
pub struct Event {
    pub worker_idx: usize,
    pub kind: EventKind,
}

#[derive(Debug)]
pub enum EventKind {
    Message(FromWorker),
    /// A line that is not protocol: the worker broke the stdout invariant.
    Garbled(String),
    /// Its stdout closed: it exited or is about to.
    Closed,
}

pub struct WorkerProcess {
    pub name: String,
    handle: Box<dyn WorkerHandle>,
    to_worker: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl WorkerProcess {
    /// Starts a worker and sends it its spec. Its events arrive on `events`.
    pub async fn spawn(
        isolation: &dyn Isolation,
        worker_idx: usize,
        spec: WorkerSpec,
        run_id: &str,
        env: &[(String, String)],
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<WorkerProcess, RunnerError> {
        let gpu = crate::workload::find(&spec.workload)
            .is_ok_and(|w| w.device_for(&spec.params) == crate::workload::Device::Gpu);
        let connection = isolation
            .spawn(&WorkerLaunch {
                tenant: &spec.tenant,
                run_id,
                env,
                gpu,
            })
            .await?;
        let stdout = connection.from_worker;
        let stderr = connection.diagnostics;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let kind = match protocol::decode_from_worker(&line) {
                    Ok(msg) => EventKind::Message(msg),
                    Err(err) => EventKind::Garbled(err.to_string()),
                };
                if events.send(Event { worker_idx, kind }).is_err() {
                    return;
                }
            }
            let _ = events.send(Event {
                worker_idx,
                kind: EventKind::Closed,
            });
        });
        if let Some(stderr) = stderr {
            let tail = Arc::clone(&stderr_tail);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let mut worker = WorkerProcess {
            name: spec.tenant.clone(),
            to_worker: Some(connection.to_worker),
            handle: connection.handle,
            stderr_tail,
        };
        worker.send(ToWorker::Start { v: VERSION, spec }).await;
        Ok(worker)
    }

    /// Sends a command. A worker that already exited cannot be told anything; the
    /// caller learns that from its events.
    pub async fn send(&mut self, msg: ToWorker) {
        if let Some(to_worker) = self.to_worker.as_mut() {
            let line = protocol::encode(&msg);
            if to_worker.write_all(line.as_bytes()).await.is_err()
                || to_worker.flush().await.is_err()
            {
                self.to_worker = None;
            }
        }
    }

    /// Waits up to `timeout` for the worker to exit, then kills it. Returns how it
    /// ended, with the tail of its diagnostics.
    pub async fn finish(&mut self, timeout: Duration) -> ExitRecord {
        // A worker that is done exits by itself. Closing its stdin first would make one
        // that is still shutting down report "runner gone" instead of its own status.
        let mut status = tokio::time::timeout(timeout, self.handle.wait())
            .await
            .ok()
            .flatten();
        if status.is_none() {
            // Closing stdin tells a worker still waiting on it that the runner is done.
            self.to_worker = None;
            status = match tokio::time::timeout(Duration::from_secs(1), self.handle.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    self.handle.kill().await;
                    self.handle.wait().await
                }
            };
        }
        // Give the stderr reader a moment to drain what the process wrote last.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        ExitRecord {
            code: status.and_then(|s| s.code),
            signal: status.and_then(|s| s.signal),
            stderr_tail: tail,
        }
    }
}
