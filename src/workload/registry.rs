//! The workloads gpushare knows, with their parameters and whether this build and host
//! can run them. Adding a workload means adding one entry here.

use serde::{Deserialize, Serialize};

use super::{CpuSynthetic, ParamInfo, Params, Workload, WorkloadError};

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

/// Builds a workload from checked parameters and a seed.
type BuildFn = fn(&Params, u64) -> Result<Box<dyn Workload>, WorkloadError>;

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

static REGISTRY: &[WorkloadInfo] = &[WorkloadInfo {
    name: "cpu.synthetic",
    summary: "CPU test fixture: spins for a fixed time per step (never GPU data)",
    item: "steps",
    device: Device::Cpu,
    params: CpuSynthetic::PARAMS,
    availability: Availability::Available,
    build: CpuSynthetic::build,
}];

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
