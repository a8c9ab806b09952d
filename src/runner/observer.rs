//! What the runner tells a live observer while a study runs (`gpushare run --prometheus`):
//! which run starts, each tenant's phase, the samples workers send, the run's GPU
//! sampler, and each finished run.
//!
//! The runner calls these from the events it handles anyway (a batch of samples arrives
//! every flush interval per worker, not per step), so observing adds nothing to what a
//! worker does and never delays Go or Stop by more than an observer's bookkeeping.
//! Observers must return quickly and never fail the study.

use crate::monitor::LatestSample;
use crate::results::schema::Study;
use crate::scenario::PlannedRun;
use crate::worker::protocol::StepSample;

/// Where a tenant of the current run is, as the runner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantPhase {
    /// Not started yet: an exclusive run measures its tenants one after another.
    Waiting,
    /// Starting, preparing and warming up, or waiting at the barrier for the others.
    Warmup,
    /// Between Go and the end of the measured window.
    Measuring,
    /// The window ended; stopping, collecting the summary, exiting.
    Stopping,
    /// Its worker is gone and its figures are in.
    Done,
}

impl TenantPhase {
    pub const ALL: [TenantPhase; 5] = [
        TenantPhase::Waiting,
        TenantPhase::Warmup,
        TenantPhase::Measuring,
        TenantPhase::Stopping,
        TenantPhase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TenantPhase::Waiting => "waiting",
            TenantPhase::Warmup => "warmup",
            TenantPhase::Measuring => "measuring",
            TenantPhase::Stopping => "stopping",
            TenantPhase::Done => "done",
        }
    }
}

/// Receives a study's progress as it happens. Every method has a default that ignores
/// it. Tenants are named by their index in the run's configuration.
pub trait Observer: Send + Sync {
    /// Run `idx` of the plan starts; its tenants are [`TenantPhase::Waiting`].
    fn run_started(&self, _idx: usize, _run: &PlannedRun) {}

    /// The current run's GPU sampler while it has one, `None` once it stopped.
    fn gpu(&self, _latest: Option<LatestSample>) {}

    /// These tenants of the current run entered `phase`.
    fn phase(&self, _tenants: &[usize], _phase: TenantPhase) {}

    /// A batch of steps tenant `tenant_idx` of the current run completed.
    fn samples(&self, _tenant_idx: usize, _samples: &[StepSample]) {}

    /// A run ended; its record is the last of `study.runs`.
    fn run_finished(&self, _study: &Study) {}
}

/// The observer of a study nobody watches live.
pub struct Unobserved;

impl Observer for Unobserved {}
