//! The tch (libtorch) networks: ResNet-50, BERT-base, GPT-2 small and ViT-B/16 built from
//! tch's `nn`, what they run on (specs, devices, precisions), how they are built on a
//! device, a model in evaluation mode fed caller-given inputs ([`InferenceModel`]), and the
//! small C++ shim for what tch 0.24 lacks (CUDA graphs included). Both the torch workloads (`workload::torch`,
//! which train or infer on synthetic data) and the inference server (`serve`) use it from
//! above; it must not time steps, report, or know about tenants, HTTP or queues. Built only
//! with the `torch` feature (libtorch at build time: `scripts/with-libtorch.sh`).
//!
//! Architectures and parameter counts equal the references (torchvision, Hugging Face).

pub mod bert;
mod build;
pub mod cuda_graph;
mod error;
pub mod gpt2;
mod inference;
pub mod layers;
mod network;
pub mod resnet;
pub mod shim;
mod spec;
pub mod vit;

pub use build::{
    autocast_guard, build_on_device, cuda_available, parameter_count, step_error,
    synchronize_device,
};
pub use cuda_graph::{cuda_graphs_built, CudaGraph, GraphPool};
pub use error::TorchError;
pub use inference::{normalize_pixel, InferenceModel, PendingLogits, IMAGENET_MEAN, IMAGENET_STD};
pub use network::{Network, SyntheticBatch};
pub use shim::{autocast_enabled, AutocastGuard};
pub use spec::{
    device_name, parse_device, JobKind, ModelKind, OptimizerKind, Precision, TorchJobSettings,
    TorchJobSpec,
};
