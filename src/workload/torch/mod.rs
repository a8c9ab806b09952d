//! Realistic ML load through tch (libtorch): the networks of [`crate::models`] trained or
//! run for inference on synthetic data, one [`TorchJob`] per tenant. This module owns the
//! jobs and their optimizers; it must not time steps, report, or know about other tenants.
//! Built only with the `torch` feature (libtorch at build time: `scripts/with-libtorch.sh`).
//!
//! A step does what `bench/reference/pytorch_eager.py` does, so throughput can be checked
//! against Python PyTorch eager on the same GPU.

mod job;
mod optim;

pub use crate::models::{
    autocast_enabled, cuda_available, device_name, parameter_count, parse_device, AutocastGuard,
    JobKind, ModelKind, OptimizerKind, Precision, TorchError, TorchJobSettings, TorchJobSpec,
};
pub use job::TorchJob;
