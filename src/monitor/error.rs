use std::net::SocketAddr;

use thiserror::Error;

/// Errors from starting the monitor or its Prometheus exporter. Once the monitor runs,
/// nothing is an error: a metric that cannot be read is missing from samples and said
/// once in the series' notes.
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
    /// The source's text is part of the message, so the advice can follow it.
    #[error("serving Prometheus text on {addr}: {source}{}", bind_advice(.source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the Prometheus exporter's runtime")]
    ExporterRuntime(#[source] std::io::Error),
}

/// What to do about a socket that would not bind.
fn bind_advice(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process listens there: choose another port, or port 0 for a free one"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; no interface of this host has that address: use 127.0.0.1, or 0.0.0.0 for all"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: choose a port above 1023"
        }
        _ => "",
    }
}
