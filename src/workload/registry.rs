//! The workloads gpushare knows, with their parameters and whether this build and host
//! can run them. Adding a workload means adding one entry here.

use serde::{Deserialize, Serialize};

use super::{
    models, notebook, probe, serve, CpuSynthetic, ParamInfo, Params, Workload, WorkloadError,
};

/// Where a workload does its work. Reports label CPU workloads so their figures are never
/// read as GPU data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Gpu,
}

/// Whether a workload can run with this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Not compiled in or not supported; the reason says what to do.
    Unavailable(&'static str),
}

/// A workload's description, parameters and constructor.
pub struct WorkloadInfo {
    /// `family.model`, as written in scenario files.
    pub name: &'static str,
    pub summary: &'static str,
    /// The unit its throughput counts (plural noun).
    pub item: &'static str,
    pub device: Device,
    pub params: &'static [ParamInfo],
    pub availability: Availability,
    build: BuildFn,
}

/// A workload's constructor: validated parameters and the tenant's seed in, workload out.
type BuildFn = fn(&Params, u64) -> Result<Box<dyn Workload>, WorkloadError>;

static REGISTRY: &[WorkloadInfo] = &[
    WorkloadInfo {
        name: "probe.compute",
        summary: "FP32 FMA-bound kernel filling every SM; throughput in GFLOP/s",
        item: "GFLOP",
        device: Device::Gpu,
        params: probe::COMPUTE_PARAMS,
        availability: probe::AVAILABILITY,
        build: probe::build_compute,
    },
    WorkloadInfo {
        name: "probe.memory",
        summary: "bandwidth-bound copy kernel; throughput in GB/s, bytes read plus written",
        item: "GB",
        device: Device::Gpu,
        params: probe::MEMORY_PARAMS,
        availability: probe::AVAILABILITY,
        build: probe::build_memory,
    },
    WorkloadInfo {
        name: "probe.latency",
        summary: "one-warp kernel at a fixed interval; latency from intended launch to completion",
        item: "launches",
        device: Device::Gpu,
        params: probe::LATENCY_PARAMS,
        availability: probe::AVAILABILITY,
        build: probe::build_latency,
    },
    WorkloadInfo {
        name: "train.resnet50",
        summary: "tch: training steps (forward, backward, optimizer) of ResNet-50 (torchvision, 25.6 M parameters)",
        item: "images",
        device: Device::Gpu,
        params: models::IMAGE_TRAIN_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<0, true>,
    },
    WorkloadInfo {
        name: "train.bert-base",
        summary: "tch: training steps (forward, backward, optimizer) of BERT-base encoder with a 2-label head (109 M parameters)",
        item: "sequences",
        device: Device::Gpu,
        params: models::TEXT_TRAIN_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<1, true>,
    },
    WorkloadInfo {
        name: "train.gpt2-small",
        summary: "tch: training steps (forward, backward, optimizer) of GPT-2 small, causal LM (124 M parameters)",
        item: "sequences",
        device: Device::Gpu,
        params: models::TEXT_TRAIN_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<2, true>,
    },
    WorkloadInfo {
        name: "train.vit-b16",
        summary: "tch: training steps (forward, backward, optimizer) of ViT-B/16 (torchvision, 86.6 M parameters)",
        item: "images",
        device: Device::Gpu,
        params: models::IMAGE_TRAIN_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<3, true>,
    },
    WorkloadInfo {
        name: "infer.batch.resnet50",
        summary: "tch: batch inference of ResNet-50 (torchvision, 25.6 M parameters)",
        item: "images",
        device: Device::Gpu,
        params: models::IMAGE_INFER_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<0, false>,
    },
    WorkloadInfo {
        name: "infer.batch.bert-base",
        summary: "tch: batch inference of BERT-base encoder with a 2-label head (109 M parameters)",
        item: "sequences",
        device: Device::Gpu,
        params: models::TEXT_INFER_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<1, false>,
    },
    WorkloadInfo {
        name: "infer.batch.gpt2-small",
        summary: "tch: batch inference of GPT-2 small, causal LM (124 M parameters)",
        item: "sequences",
        device: Device::Gpu,
        params: models::TEXT_INFER_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<2, false>,
    },
    WorkloadInfo {
        name: "infer.batch.vit-b16",
        summary: "tch: batch inference of ViT-B/16 (torchvision, 86.6 M parameters)",
        item: "images",
        device: Device::Gpu,
        params: models::IMAGE_INFER_PARAMS,
        availability: models::AVAILABILITY,
        build: models::build::<3, false>,
    },
    WorkloadInfo {
        name: "serve.resnet50",
        summary: "ResNet-50 (tch) behind `gpushare serve` with dynamic batching, loaded open loop at `rate` req/s by its own generator process; latency from each request's intended send time",
        item: "requests",
        device: Device::Gpu,
        params: serve::RESNET50_PARAMS,
        availability: models::AVAILABILITY,
        build: serve::build_resnet50,
    },
    WorkloadInfo {
        name: "serve.bert-base",
        summary: "BERT-base (tch) behind `gpushare serve` with dynamic batching, loaded open loop at `rate` req/s by its own generator process; latency from each request's intended send time",
        item: "requests",
        device: Device::Gpu,
        params: serve::BERT_BASE_PARAMS,
        availability: models::AVAILABILITY,
        build: serve::build_bert_base,
    },
    WorkloadInfo {
        name: "serve.delay",
        summary: "CPU test fixture: `gpushare serve --model test.delay` (a sleep per batch) as a serving tenant with its load generator (never GPU data)",
        item: "requests",
        device: Device::Cpu,
        params: serve::DELAY_PARAMS,
        availability: Availability::Available,
        build: serve::build_delay,
    },
    WorkloadInfo {
        name: "interactive.notebook",
        summary: "bursty session: exponential think time, then FMA-kernel cells; latency is the wait for a burst (device = \"cpu\" spins instead)",
        item: "cells",
        device: Device::Gpu,
        params: notebook::PARAMS,
        // Available in every build: device = "cpu" needs no GPU, and building it with
        // device = "cuda" without the cuda feature says why it cannot run.
        availability: Availability::Available,
        build: notebook::build,
    },
    WorkloadInfo {
        name: "cpu.synthetic",
        summary: "CPU test fixture: spins for a fixed time per step, counting items_per_step items (never GPU data)",
        // Throughput counts items (items_per_step of them per step), so it is labelled so.
        item: "items",
        device: Device::Cpu,
        params: CpuSynthetic::PARAMS,
        availability: Availability::Available,
        build: CpuSynthetic::build,
    },
];

impl WorkloadInfo {
    /// Where the workload runs with these parameters: its usual device, unless it takes a
    /// `device` parameter and that says "cpu" (reports then label its figures CPU data).
    pub fn device_for(&self, params: &Params) -> Device {
        let has_device_param = self.params.iter().any(|p| p.name == "device");
        if has_device_param && params.str_or("device", "") == "cpu" {
            Device::Cpu
        } else {
            self.device
        }
    }
}

/// Whether a workload paces itself instead of running as fast as the GPU lets it: a
/// serving tenant at its offered `rate`, a notebook that mostly thinks, the latency probe
/// at its fixed launch interval. Such an open-loop tenant has NP close to 1 whenever it
/// keeps up, so reports show whether it kept up and STP over the closed-loop tenants too.
pub fn paces_itself(workload: &str) -> bool {
    workload.starts_with("serve.")
        || workload == "interactive.notebook"
        || workload == "probe.latency"
}

/// Every workload, in the order `gpushare list` shows them.
pub fn registry() -> &'static [WorkloadInfo] {
    REGISTRY
}

/// Looks a workload up by name.
pub fn find(name: &str) -> Result<&'static WorkloadInfo, WorkloadError> {
    REGISTRY
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| WorkloadError::Unknown {
            name: name.to_string(),
        })
}

/// Builds a workload after checking its parameters and availability.
pub fn build(name: &str, params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    let info = find(name)?;
    if let Availability::Unavailable(reason) = info.availability {
        return Err(WorkloadError::Unavailable {
            name: name.to_string(),
            reason: reason.to_string(),
        });
    }
    params.check(name, info.params)?;
    (info.build)(params, seed)
}
