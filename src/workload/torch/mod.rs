//! Realistic ML load through tch (libtorch): ResNet-50, BERT-base, GPT-2 small and ViT-B/16
//! trained or run for inference on synthetic data, one [`TorchJob`] per tenant. This module
//! owns the models, their synthetic batches and optimizers; it must not time steps, report,
//! or know about other tenants. Built only with the `torch` feature (libtorch at build time:
//! `scripts/with-libtorch.sh`).
//!
//! Architectures and parameter counts equal the references (torchvision, Hugging Face), and
//! a step does what `bench/reference/pytorch_eager.py` does, so throughput can be checked
//! against Python PyTorch eager on the same GPU.

pub mod bert;
mod error;
pub mod gpt2;
mod job;
mod layers;
mod network;
mod optim;
pub mod resnet;
mod serving;
mod shim;
mod spec;
pub mod vit;

pub use error::TorchError;
pub use job::{cuda_available, parameter_count, TorchJob};
pub use serving::InferenceModel;
pub use shim::{autocast_enabled, AutocastGuard};
pub use spec::{
    device_name, parse_device, JobKind, ModelKind, OptimizerKind, Precision, TorchJobSettings,
    TorchJobSpec,
};
