//! What a worker runs: the workload seam and the registry of workload families.
//!
//! A workload builds itself from validated parameters, does its set-up and warm-up in
//! [`Workload::prepare`] (before the worker reports Ready), then runs one step at a time.
//! It knows nothing about other tenants, sharing modes or how its samples travel.

mod cpu_synthetic;
mod error;
mod models;
mod notebook;
mod params;
pub mod probe;
mod registry;
pub mod serve;
#[cfg(feature = "torch")]
pub mod torch;

pub use cpu_synthetic::CpuSynthetic;
pub use error::WorkloadError;
pub use params::{ParamInfo, ParamKind, ParamValue, Params};
pub use registry::{build, find, paces_itself, registry, Availability, Device, WorkloadInfo};

use std::time::Duration;

/// What one step of a workload did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Items completed by this step, in the workload's item unit (images, sequences, ...).
    pub items: u64,
    /// A latency the workload measured itself, when its figure of merit is not the step
    /// time (for example a probe's launch-to-completion time), in seconds.
    pub latency_s: Option<f64>,
    /// Units of work this step attempted that failed (a serving tenant's requests answered
    /// with an error or dropped). They are not in `items`, carry no latency, and count as
    /// misses against the tenant's SLO. Zero for workloads that cannot fail partly.
    pub failed: u64,
}

/// A workload instance owned by one worker process.
pub trait Workload: Send {
    /// Set-up and warm-up: allocations, compilation, autotuning. Runs before Ready, so
    /// nothing here is measured. `warmup` is the scenario's warm-up time.
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError>;

    /// Runs one step and returns only once its work is complete (a GPU workload
    /// synchronizes), so the step's wall time is real.
    fn step(&mut self) -> Result<Step, WorkloadError>;

    /// Peak device memory this workload used, in bytes, where it can tell.
    fn memory_peak_bytes(&self) -> Option<u64> {
        None
    }
}
