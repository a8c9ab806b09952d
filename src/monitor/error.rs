use thiserror::Error;

/// Errors from starting the monitor. Once it runs, nothing is an error: a metric that
/// cannot be read is missing from samples and said once in the series' notes.
#[derive(Debug, Error)]
pub enum MonitorError {
    #[error("starting the GPU monitor: {reason}")]
    Unavailable { reason: &'static str },
    #[error("initializing NVML (libnvidia-ml.so.1): {reason}")]
    NvmlInit { reason: String },
    #[error("opening GPU {gpu_index} through NVML: {reason}")]
    Device { gpu_index: u32, reason: String },
    #[error("sampling every {interval_ms} ms: the interval must be at least 1 ms")]
    Interval { interval_ms: u64 },
    #[error("starting the monitor's sampler thread")]
    Spawn { source: std::io::Error },
}
