//! Errors of the tch (libtorch) workloads.

use tch::TchError;

use super::spec::{JobKind, ModelKind};

/// Why a torch job could not be built or run. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    /// The spec asks for something the model cannot do.
    #[error("configure {model}: {reason}")]
    InvalidSpec { model: ModelKind, reason: String },

    /// The spec names a CUDA device that libtorch cannot use.
    #[error("use {device} for {model}: libtorch sees {n_devices} CUDA device(s)")]
    DeviceUnavailable {
        model: ModelKind,
        device: String,
        n_devices: i64,
    },

    /// Building the network panicked inside tch (whose layer constructors panic instead of
    /// returning errors), typically because the device ran out of memory.
    #[error("build {model} on {device}: {message}")]
    Build {
        model: ModelKind,
        device: String,
        message: String,
    },

    /// Waiting for the GPU at the end of a step failed: an asynchronous CUDA error surfaced.
    #[error("synchronize {device}: {message}")]
    Synchronize { device: String, message: String },

    /// A libtorch operation failed, typically CUDA running out of memory.
    #[error("run a {kind} step of {model} ({during})")]
    Step {
        model: ModelKind,
        kind: JobKind,
        during: &'static str,
        #[source]
        source: TchError,
    },

    /// Allocating an optimizer's per-parameter state failed (out of memory, typically).
    #[error("allocate optimizer state")]
    OptimizerState {
        #[source]
        source: TchError,
    },

    /// A call into the C++ shim threw inside libtorch.
    #[error("call libtorch's {call}: {message}")]
    Shim { call: &'static str, message: String },

    /// A model name is none of the four.
    #[error("parse model {text:?}: expected resnet50, bert-base, gpt2-small or vit-b16")]
    ParseModel { text: String },

    /// A device name in a spec is not `cpu`, `cuda` or `cuda:N`.
    #[error("parse device {text:?}: expected cpu, cuda or cuda:N")]
    ParseDevice { text: String },
}
