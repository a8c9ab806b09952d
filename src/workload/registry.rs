//! The workloads gpushare knows, with their parameters and whether this build and host
//! can run them. Adding a workload means adding one entry here.

use serde::{Deserialize, Serialize};

use super::{probe, CpuSynthetic, ParamInfo, Params, Workload, WorkloadError};

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
        name: "cpu.synthetic",
        summary: "CPU test fixture: spins for a fixed time per step (never GPU data)",
        item: "steps",
        device: Device::Cpu,
        params: CpuSynthetic::PARAMS,
        availability: Availability::Available,
        build: CpuSynthetic::build,
    },
];

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
