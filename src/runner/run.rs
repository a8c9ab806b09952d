//! One planned run: enter the mode, start the workers, hold them at the barrier until all
//! are Ready, release them together, collect samples over the window, stop them, collect
//! summaries, exit the mode. Every wait has a timeout; a worker that fails stops the run
//! and is recorded with its exit status and stderr.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use super::observer::{Observer, TenantPhase};
use super::worker_process::{Event, EventKind, WorkerProcess};
use super::Progress;
use crate::isolation::Isolation;
use crate::limits;
use crate::monitor::{self, MonitorConfig};
use crate::results::schema::{RunRecord, RunStatus, Samples, TenantRecord, WindowRecord};
use crate::scenario::{Plan, PlannedRun, Scenario, TenantInstance};
use crate::sharing::{self, ModeContext, ModeGuard, MpsConfig, WorkerSharing};
use crate::worker::protocol::{FromWorker, ToWorker, WorkerSpec, VERSION};
use crate::workload;

/// How long an exiting worker gets before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What a run needs from the study.
pub struct RunContext<'a> {
    pub scenario: &'a Scenario,
    pub plan: &'a Plan,
    pub isolation: &'a dyn Isolation,
    pub interrupt: watch::Receiver<bool>,
    pub study_start: Instant,
    /// How often workers send their samples, in milliseconds.
    pub flush_interval_ms: u64,
    /// GPU sampling for runs with GPU tenants; `None` samples nothing.
    pub monitor: Option<MonitorConfig>,
    /// The study's progress, and its live observer.
    pub progress: Progress,
}

/// Why a group of workers stopped early.
struct Stopped {
    status: RunStatus,
    reason: String,
}

/// Executes one run and returns its record; failures are recorded, not returned.
pub async fn execute(ctx: &mut RunContext<'_>, run: &PlannedRun) -> RunRecord {
    let started = Instant::now();
    let config = ctx.plan.config(run);
    let mut record = RunRecord {
        id: run.id.clone(),
        config_idx: run.config_idx,
        mode: run.mode.clone(),
        repetition: run.repetition,
        status: RunStatus::Completed,
        failure: None,
        mode_record: Default::default(),
        started_s: (started - ctx.study_start).as_secs_f64(),
        elapsed_s: 0.0,
        tenants: config
            .tenants
            .iter()
            .map(|t| empty_record(t, Plan::seed(ctx.scenario.run.seed, t, run.repetition)))
            .collect(),
        monitor: None,
        monitor_note: None,
        windows: vec![],
    };
    let has_gpu_tenant = record
        .tenants
        .iter()
        .any(|t| t.device == workload::Device::Gpu);
    let sampler = match ctx.monitor {
        Some(cfg) if has_gpu_tenant => match monitor::start(cfg) {
            Ok(handle) => {
                ctx.progress.observer().gpu(Some(handle.latest_reader()));
                Some(handle)
            }
            Err(err) => {
                record.monitor_note = Some(crate::errors::error_chain(&err));
                None
            }
        },
        _ => None,
    };
    let mut windows: Vec<(Vec<String>, Instant, Instant)> = vec![];
    let context = ModeContext {
        gpu_index: 0,
        run_id: run.id.clone(),
        workers: config
            .tenants
            .iter()
            .map(|t| WorkerSharing {
                label: t.name.clone(),
                sharing: t.sharing.clone(),
            })
            .collect(),
        mps: MpsConfig::from_env(),
    };
    // Entering and leaving a mode can wait on a daemon for seconds; block_in_place keeps
    // the runtime's other tasks (the signal listener) running meanwhile.
    let entered = if ctx.isolation.mode_set_up_by_platform() {
        Ok(sharing::set_up_by_platform(&run.mode, &context))
    } else {
        tokio::task::block_in_place(|| sharing::enter(&run.mode, &context))
    };
    let guard = match entered {
        Ok(guard) => guard,
        Err(err) => {
            record.status = RunStatus::Failed;
            record.failure = Some(crate::errors::error_chain(&err));
            record.elapsed_s = started.elapsed().as_secs_f64();
            return record;
        }
    };
    record.mode_record = guard.record();
    // Exclusive runs each tenant alone in turn; the other modes run them all at once.
    // With run.exclusive_replicas, only that many replicas of each tenant run alone: the
    // pooled baseline of identical replicas (metrics::baseline) stands for the others.
    let groups: Vec<Vec<usize>> = if run.mode.concurrent() {
        vec![(0..config.tenants.len()).collect()]
    } else {
        let measured = ctx.scenario.run.exclusive_replicas.unwrap_or(u32::MAX);
        (0..config.tenants.len())
            .filter(|&i| config.tenants[i].replica_idx < measured)
            .map(|i| vec![i])
            .collect()
    };
    let measured: Vec<String> = groups
        .iter()
        .flatten()
        .map(|&i| config.tenants[i].name.clone())
        .collect();
    for group in groups {
        let outcome = measure(ctx, run, &group, guard.as_ref(), &mut record.tenants).await;
        if let Some((go, stop)) = outcome.window {
            let names = group
                .iter()
                .map(|&i| record.tenants[i].name.clone())
                .collect();
            windows.push((names, go, stop));
        }
        if let Err(stopped) = outcome.result {
            record.status = stopped.status;
            let mut reason = stopped.reason;
            if let Some(context) = guard.failure_context() {
                reason.push_str(&format!("\n{context}"));
            }
            record.failure = Some(reason);
            break;
        }
    }
    if measured.len() < record.tenants.len() {
        record.tenants.retain(|t| measured.contains(&t.name));
    }
    if let Err(err) = tokio::task::block_in_place(|| guard.exit()) {
        let reason = crate::errors::error_chain(&err);
        record.failure = Some(match record.failure.take() {
            Some(first) => format!("{first}; then {reason}"),
            None => reason,
        });
        if record.status == RunStatus::Completed {
            record.status = RunStatus::Failed;
        }
    }
    if let Some(sampler) = sampler {
        ctx.progress.observer().gpu(None);
        record.windows = windows
            .into_iter()
            .map(|(tenants, go, stop)| WindowRecord {
                tenants,
                start_s: sampler.seconds_at(go),
                end_s: sampler.seconds_at(stop),
            })
            .collect();
        // Joins the sampler thread after one last sample: milliseconds.
        record.monitor = Some(tokio::task::block_in_place(|| sampler.stop()));
    }
    record.elapsed_s = started.elapsed().as_secs_f64();
    record
}

/// How one group's measurement went, and when its window was, if it got that far.
struct Measured {
    result: Result<(), Stopped>,
    /// When Go was sent and when the window ended.
    window: Option<(Instant, Instant)>,
}

fn empty_record(t: &TenantInstance, seed: u64) -> TenantRecord {
    let (device, item) = workload::find(&t.workload)
        .map(|w| (w.device_for(&t.params), w.item.to_string()))
        .unwrap_or((workload::Device::Cpu, "items".to_string()));
    TenantRecord {
        name: t.name.clone(),
        workload: t.workload.clone(),
        device,
        item,
        seed,
        prepare_s: None,
        samples: Samples::default(),
        summary: None,
        exit: None,
        error: None,
    }
}

/// Where a worker is in its life, as the runner has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Measuring,
    Done,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Starting => "before reporting Ready",
            Phase::Ready | Phase::Measuring => "during the measured window",
            Phase::Done => "after its summary",
        }
    }
}

/// Runs one group of tenants together through the barrier and the window.
async fn measure(
    ctx: &mut RunContext<'_>,
    run: &PlannedRun,
    group: &[usize],
    guard: &dyn ModeGuard,
    records: &mut [TenantRecord],
) -> Measured {
    let mut window = None;
    let result = measure_group(ctx, run, group, guard, records, &mut window).await;
    ctx.progress.observer().phase(group, TenantPhase::Done);
    Measured { result, window }
}

async fn measure_group(
    ctx: &mut RunContext<'_>,
    run: &PlannedRun,
    group: &[usize],
    guard: &dyn ModeGuard,
    records: &mut [TenantRecord],
    window: &mut Option<(Instant, Instant)>,
) -> Result<(), Stopped> {
    let settings = &ctx.scenario.run;
    let config = ctx.plan.config(run);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut workers: Vec<WorkerProcess> = vec![];
    let progress = ctx.progress.clone();
    let observer = progress.observer();
    observer.phase(group, TenantPhase::Warmup);
    let mut session = Session {
        group,
        records,
        phases: vec![],
        observer,
    };
    for (worker_idx, &tenant_idx) in group.iter().enumerate() {
        let tenant = &config.tenants[tenant_idx];
        let spec = WorkerSpec {
            tenant: tenant.name.clone(),
            workload: tenant.workload.clone(),
            params: tenant.params.clone(),
            seed: session.records[tenant_idx].seed,
            warmup_s: settings.warmup_s,
            flush_interval_ms: ctx.flush_interval_ms,
        };
        let started = match guard.tenant_env(tenant_idx) {
            Ok(env) => {
                WorkerProcess::spawn(ctx.isolation, worker_idx, spec, &run.id, &env, tx.clone())
                    .await
                    .map_err(|e| crate::errors::error_chain(&e))
            }
            Err(err) => Err(crate::errors::error_chain(&err)),
        };
        match started {
            Ok(worker) => {
                workers.push(worker);
                session.phases.push(Phase::Starting);
            }
            Err(reason) => {
                // The run is failing anyway; what the others measured is not wanted.
                let _ =
                    shutdown(&mut workers, &mut rx, &mut session, settings.stop_timeout_s).await;
                finish_all(&mut workers, &mut session).await;
                return Err(Stopped {
                    status: RunStatus::Failed,
                    reason,
                });
            }
        }
    }
    drop(tx);

    let outcome = async {
        let ready_deadline = after(settings.ready_timeout_s);
        while session.phases.contains(&Phase::Starting) {
            tokio::select! {
                event = rx.recv() => session.handle(event)?,
                _ = sleep_until(ready_deadline) => {
                    let late = session.names_in(Phase::Starting);
                    return Err(format!(
                        "{late} did not report Ready within run.ready_timeout_s = {} s",
                        settings.ready_timeout_s
                    ));
                }
                _ = ctx.interrupt.changed() => return Err(INTERRUPTED.to_string()),
            }
        }
        for worker in &mut workers {
            worker.send(ToWorker::Go { v: VERSION }).await;
        }
        session
            .phases
            .iter_mut()
            .for_each(|p| *p = Phase::Measuring);
        let go = Instant::now();
        observer.phase(group, TenantPhase::Measuring);
        let window_end = after(settings.duration_s);
        let ended = loop {
            tokio::select! {
                event = rx.recv() => {
                    if let Err(err) = session.handle(event) {
                        break Err(err);
                    }
                }
                _ = sleep_until(window_end) => break Ok(()),
                _ = ctx.interrupt.changed() => break Err(INTERRUPTED.to_string()),
            }
        };
        *window = Some((go, Instant::now()));
        ended
    }
    .await;
    observer.phase(group, TenantPhase::Stopping);

    let stop_outcome = shutdown(&mut workers, &mut rx, &mut session, settings.stop_timeout_s).await;
    let exits = finish_all(&mut workers, &mut session).await;
    match outcome.and(stop_outcome) {
        Ok(()) if exits.is_empty() => Ok(()),
        Ok(()) => Err(Stopped {
            status: RunStatus::Failed,
            reason: exits.join("; "),
        }),
        Err(reason) if reason == INTERRUPTED => Err(Stopped {
            status: RunStatus::Interrupted,
            reason,
        }),
        Err(reason) => {
            let mut reason = reason;
            if !exits.is_empty() {
                reason.push_str(&format!("; {}", exits.join("; ")));
            }
            Err(Stopped {
                status: RunStatus::Failed,
                reason,
            })
        }
    }
}

const INTERRUPTED: &str = "interrupted by a signal";

/// The instant `s` seconds from now. Validated settings always convert; anything else
/// (which validation rejects) waits as long as an instant can, rather than panicking.
fn after(s: f64) -> tokio::time::Instant {
    let wait = limits::duration_from_secs(s.max(0.0)).unwrap_or(Duration::MAX);
    limits::deadline(tokio::time::Instant::now(), wait)
}

/// Sends Stop to every worker still running and waits for their summaries, so the
/// others' measurements survive one tenant's failure.
async fn shutdown(
    workers: &mut [WorkerProcess],
    rx: &mut mpsc::UnboundedReceiver<Event>,
    session: &mut Session<'_>,
    stop_timeout_s: f64,
) -> Result<(), String> {
    for (idx, worker) in workers.iter_mut().enumerate() {
        if session.phases[idx] != Phase::Done {
            worker.send(ToWorker::Stop { v: VERSION }).await;
        }
    }
    let deadline = after(stop_timeout_s);
    let mut first_error = None;
    while session.phases.iter().any(|p| *p != Phase::Done) {
        tokio::select! {
            event = rx.recv() => {
                if event.is_none() {
                    break;
                }
                if let Err(err) = session.handle(event) {
                    first_error.get_or_insert(err);
                }
            }
            _ = sleep_until(deadline) => {
                let hung = session.names_not_done();
                first_error.get_or_insert(format!(
                    "{hung} did not answer Stop within run.stop_timeout_s = {stop_timeout_s} s (hung?) and was killed"
                ));
                break;
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Reaps every worker, killing those that do not exit, and records abnormal exits.
/// Returns a description of each abnormal exit.
async fn finish_all(workers: &mut [WorkerProcess], session: &mut Session<'_>) -> Vec<String> {
    let mut abnormal = vec![];
    for (idx, worker) in workers.iter_mut().enumerate() {
        let exit = worker.finish(EXIT_GRACE).await;
        let record = &mut session.records[session.group[idx]];
        if exit.code != Some(0) {
            let how = match (exit.code, exit.signal) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal}"),
                (None, None) => "ended without an exit status".to_string(),
            };
            let tail = if exit.stderr_tail.is_empty() {
                String::new()
            } else {
                format!("; its stderr ends:\n{}", exit.stderr_tail)
            };
            abnormal.push(format!("worker `{}` {how}{tail}", worker.name));
            record.exit = Some(exit);
        }
    }
    abnormal
}

/// The records and phases of one group's workers while they run.
struct Session<'a> {
    /// Tenant index of each worker.
    group: &'a [usize],
    records: &'a mut [TenantRecord],
    phases: Vec<Phase>,
    /// Told of every batch of samples, as they arrive.
    observer: &'a dyn Observer,
}

impl Session<'_> {
    /// Applies one worker event; an error describes a worker that failed.
    fn handle(&mut self, event: Option<Event>) -> Result<(), String> {
        let Some(Event { worker_idx, kind }) = event else {
            return Err("every worker closed its output".to_string());
        };
        let phase = self.phases[worker_idx];
        let record = &mut self.records[self.group[worker_idx]];
        match kind {
            EventKind::Message(FromWorker::Ready { prepare_s, .. }) => {
                record.prepare_s = Some(prepare_s);
                self.phases[worker_idx] = Phase::Ready;
            }
            EventKind::Message(FromWorker::Samples { samples, .. }) => {
                samples.iter().for_each(|s| record.samples.push(s));
                self.observer.samples(self.group[worker_idx], &samples);
            }
            EventKind::Message(FromWorker::Summary { summary, .. }) => {
                record.summary = Some(summary);
                self.phases[worker_idx] = Phase::Done;
            }
            EventKind::Message(FromWorker::Error { message, .. }) => {
                record.error = Some(message.clone());
                self.phases[worker_idx] = Phase::Done;
                return Err(format!(
                    "worker `{}` failed {}: {message}",
                    record.name,
                    phase.describe()
                ));
            }
            EventKind::Garbled(reason) => {
                record.error = Some(reason.clone());
                return Err(format!(
                    "worker `{}` broke the protocol: {reason}",
                    record.name
                ));
            }
            EventKind::Closed if phase != Phase::Done => {
                self.phases[worker_idx] = Phase::Done;
                let reason = format!("exited {}", phase.describe());
                record.error = Some(reason.clone());
                return Err(format!("worker `{}` {reason}", record.name));
            }
            EventKind::Closed => {}
        }
        Ok(())
    }

    fn names_in(&self, phase: Phase) -> String {
        self.names(|p| p == phase)
    }

    fn names_not_done(&self) -> String {
        self.names(|p| p != Phase::Done)
    }

    fn names(&self, pick: impl Fn(Phase) -> bool) -> String {
        let names: Vec<String> = self
            .phases
            .iter()
            .enumerate()
            .filter(|(_, p)| pick(**p))
            .map(|(idx, _)| format!("worker `{}`", self.records[self.group[idx]].name))
            .collect();
        names.join(", ")
    }
}
