use thiserror::Error;

/// Errors from building or running a workload.
#[derive(Debug, Error)]
pub enum WorkloadError {
    #[error("finding workload `{name}`: no such workload (run `gpushare list` to see them)")]
    Unknown { name: String },
    #[error("using workload `{name}`: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("reading parameter `{param}` of `{workload}`: unknown parameter (allowed: {allowed})")]
    UnknownParam {
        workload: String,
        param: String,
        allowed: String,
    },
    #[error("reading parameter `{param}` of `{workload}`: expected {expected}, got {got}")]
    ParamType {
        workload: String,
        param: String,
        expected: &'static str,
        got: String,
    },
    #[error("reading parameter `{param}` of `{workload}`: {reason}")]
    ParamValue {
        workload: String,
        param: String,
        reason: String,
    },
    #[error("running step {step} of `{workload}`: {reason}")]
    Step {
        workload: String,
        step: u64,
        reason: String,
    },
    #[error("preparing `{workload}`: {reason}")]
    Prepare { workload: String, reason: String },
}
