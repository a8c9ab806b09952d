//! The GPU monitor: samples NVML on its own thread while a run's tenants work, summarizes
//! a measurement window (utilization, clock, power, energy, throttling), renders samples
//! as Prometheus text with dcgm-exporter's names, and serves Prometheus scrapes
//! (`exporter`, for `monitor --prometheus` and `run --prometheus`).
//!
//! It must not block the runner: sampling happens on a plain OS thread, never on the
//! async runtime, and starting is the only fallible step. Once running, a metric that
//! cannot be read is absent from samples and said once in the series' notes.
//!
//! NVML sits behind [`GpuSource`], so the sampler, the "said once" notes and the
//! summaries are tested with [`SyntheticSource`] on machines without a GPU.

pub mod dcgm;
mod error;
pub mod exporter;
pub mod exposition;
#[cfg(feature = "cuda")]
mod nvml;
mod sampler;
mod series;
mod summary;
mod synthetic;
pub mod tui;

pub use error::MonitorError;
#[cfg(feature = "cuda")]
pub use nvml::{throttle_reason_names, NvmlSource};
pub use sampler::{
    start_live_with_source, start_with_source, thread_cpu_s, GpuSource, LatestSample,
    MonitorConfig, MonitorHandle, Reading,
};
pub use series::{Missing, MonitorSeries, Note, NoteKind, ProcessSample, Sample};
pub use summary::{energy_per_item_j, summarize, EnergySource, MonitorSummary};
pub use synthetic::SyntheticSource;

/// A process's command name from `/proc/<pid>/comm`, or `?` (another PID namespace, or
/// the process has ended): how the live view, the exporters and a running study name the
/// processes NVML lists by PID.
pub fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Starts sampling GPU `config.gpu_index` through NVML every `config.interval_ms`.
pub fn start(config: MonitorConfig) -> Result<MonitorHandle, MonitorError> {
    nvml_source(config.gpu_index).and_then(|source| start_with_source(config, source))
}

/// [`start`] for a live view (`gpushare monitor`): keeps only the latest sample, so memory
/// stays flat however long it runs.
pub fn start_live(config: MonitorConfig) -> Result<MonitorHandle, MonitorError> {
    nvml_source(config.gpu_index).and_then(|source| start_live_with_source(config, source))
}

fn nvml_source(gpu_index: u32) -> Result<Box<dyn GpuSource>, MonitorError> {
    #[cfg(feature = "cuda")]
    return Ok(Box::new(NvmlSource::open(gpu_index)?));
    #[cfg(not(feature = "cuda"))]
    {
        let _ = gpu_index;
        Err(MonitorError::Unavailable {
            reason: "built without the cuda feature",
        })
    }
}
