//! The runner: executes a plan run by run, with a sharing mode and an isolation backend,
//! and writes the study as it goes.
//!
//! **Invariant:** the runner never opens a CUDA context (a faulting tenant takes down only
//! its own worker) and computes no statistics beyond what it needs to print progress.
//! It never leaves a worker behind: every worker is reaped or killed before a run ends,
//! also on SIGINT and SIGTERM.

mod observer;
mod progress;
mod run;
mod worker_process;

pub use observer::{Observer, TenantPhase, Unobserved};
pub use progress::{say, Progress};

use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::watch;

use crate::environment::Environment;
use crate::isolation::{Isolation, IsolationError};
use crate::metrics;
use crate::monitor::MonitorConfig;
use crate::results::schema::{RunStatus, Study, SCHEMA_VERSION};
use crate::results::store::{self, StoreError};
use crate::scenario::{Plan, Scenario, Shard};

/// Errors that stop a study (a failing run is recorded, not an error).
#[derive(Debug, Error)]
pub enum RunnerError {
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listening for SIGINT and SIGTERM: {0}")]
    Signals(std::io::Error),
}

/// What a study runs and where it writes.
pub struct StudyInput<'a> {
    pub scenario: &'a Scenario,
    pub scenario_source: &'a str,
    pub scenario_path: &'a Path,
    pub plan: &'a Plan,
    /// The shard of the sweep `plan` holds, recorded in the study.
    pub shard: Option<Shard>,
    pub isolation: &'a dyn Isolation,
    /// The study directory; `run.json` is written there after every run.
    pub out_dir: PathBuf,
    /// How often workers send their samples, in milliseconds.
    pub flush_interval_ms: u64,
    /// GPU sampling for runs with GPU tenants; `None` samples nothing.
    pub monitor: Option<MonitorConfig>,
}

/// Runs every planned run in order and returns the study, also written to
/// `out_dir/run.json`. Stops early, keeping what it has, on SIGINT or SIGTERM.
pub async fn run_study(input: StudyInput<'_>, progress: &Progress) -> Result<Study, RunnerError> {
    // Held until the study is written in full: a report meanwhile says "still running",
    // and one after a SIGKILL finds it released.
    let lock = store::StudyLock::acquire(&input.out_dir)?;
    let interrupt = listen_for_signals(progress.clone())?;
    let mut study = Study {
        schema_version: SCHEMA_VERSION,
        scenario: input.scenario.clone(),
        scenario_source: input.scenario_source.to_string(),
        scenario_path: input.scenario_path.display().to_string(),
        plan: input.plan.clone(),
        shard: input.shard,
        environment: Environment {
            isolation: Some(input.isolation.name().to_string()),
            container: input.isolation.container_environment(),
            ..Environment::capture()
        },
        started_at: store::now_rfc3339(),
        finished_at: None,
        interrupted: false,
        runs: vec![],
        analysis: None,
    };
    let mut ctx = run::RunContext {
        scenario: input.scenario,
        plan: input.plan,
        isolation: input.isolation,
        interrupt: interrupt.clone(),
        study_start: Instant::now(),
        flush_interval_ms: input.flush_interval_ms,
        monitor: input.monitor,
        progress: progress.clone(),
    };
    let path = input.out_dir.join(store::RUN_FILE);
    store::write_study(&path, &study)?;
    for (idx, planned) in input.plan.runs.iter().enumerate() {
        if *interrupt.borrow() {
            break;
        }
        progress.start_run(idx, &planned.id);
        progress.observer().run_started(idx, planned);
        let record = run::execute(&mut ctx, planned).await;
        progress.finish_run(&record);
        let interrupted = record.status == RunStatus::Interrupted;
        study.runs.push(record);
        store::write_study(&path, &study)?;
        progress.observer().run_finished(&study);
        if interrupted {
            break;
        }
    }
    study.interrupted = *interrupt.borrow();
    study.finished_at = Some(store::now_rfc3339());
    // Plain data with string keys: serializing it cannot fail.
    study.analysis = serde_json::to_value(metrics::analyze(&study)).ok();
    store::write_study(&path, &study)?;
    lock.release();
    progress.finish();
    Ok(study)
}

/// Flips to true on the first SIGINT or SIGTERM.
fn listen_for_signals(progress: Progress) -> Result<watch::Receiver<bool>, RunnerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunnerError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunnerError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        progress.note("interrupted: stopping workers and writing what was measured");
        let _ = tx.send(true);
    });
    Ok(rx)
}
