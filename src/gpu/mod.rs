//! Read-only facts about this host's NVIDIA GPUs, through NVML: the driver, each device,
//! its compute mode, its MIG mode and MIG instances.
//!
//! `doctor` and the sharing modes both read the host through this module, so they see the
//! same facts in the same words. It only reads: it never changes a GPU setting. A fact
//! NVML cannot give (`NotSupported`, `NoPermission`) is absent, with one note saying why.
//! Without the `cuda` feature every query answers [`GpuError::NotBuilt`].

#[cfg(feature = "cuda")]
mod nvml;

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors from reading the host's GPUs.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error("reading GPUs: this gpushare was built without the `cuda` feature")]
    NotBuilt,
    #[cfg(feature = "cuda")]
    #[error("loading NVML")]
    LoadingNvml {
        #[source]
        source: nvml_wrapper::error::NvmlError,
    },
    #[cfg(feature = "cuda")]
    #[error("reading {what} through NVML")]
    Reading {
        what: String,
        #[source]
        source: nvml_wrapper::error::NvmlError,
    },
    #[error("finding GPU {gpu_index}: NVML sees {n_gpus} GPU(s)")]
    NoSuchGpu { gpu_index: u32, n_gpus: usize },
}

/// The driver and every GPU NVML sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostGpus {
    /// Driver version as NVML reports it, e.g. `580.159.04`.
    pub driver_version: String,
    /// Newest CUDA version the driver supports, e.g. `13.0`; absent when NVML cannot say.
    pub cuda_driver_version: Option<String>,
    /// The GPUs in NVML index order.
    pub gpus: Vec<GpuInfo>,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// NVML index (the order of `nvidia-smi`, by PCI bus).
    pub index: u32,
    /// Product name, e.g. `NVIDIA H200`.
    pub name: String,
    /// `GPU-...` UUID.
    pub uuid: String,
    /// Installed device memory, in bytes.
    pub memory_total_bytes: Option<u64>,
    /// Compute mode; absent when NVML cannot say (see `notes`).
    pub compute_mode: Option<ComputeMode>,
    /// MIG mode and instances; absent when NVML cannot say (see `notes`).
    pub mig: Option<MigState>,
    /// Facts NVML could not give for this GPU, one line each.
    pub notes: Vec<String>,
}

/// NVML compute mode: how many CUDA contexts the GPU accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComputeMode {
    /// Any number of contexts from any processes (time-slicing between them).
    Default,
    /// One context, usable by one thread (no longer supported by NVIDIA).
    ExclusiveThread,
    /// No contexts at all.
    Prohibited,
    /// One context, from one process (MPS's server counts as one).
    ExclusiveProcess,
}

/// Whether a GPU runs MIG, and its instances when it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum MigState {
    /// The GPU cannot be partitioned.
    NotSupported,
    /// MIG is off; `pending_enabled` says whether it turns on at the next GPU reset.
    Disabled {
        /// Whether MIG is enabled after the next GPU reset.
        pending_enabled: bool,
    },
    /// MIG is on, with these instances (possibly none).
    Enabled {
        /// Whether MIG stays enabled after the next GPU reset.
        pending_enabled: bool,
        /// The MIG devices (GPU instance + compute instance) that exist now.
        instances: Vec<MigInstance>,
    },
}

/// One MIG device: what a CUDA process sees when `CUDA_VISIBLE_DEVICES` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigInstance {
    /// Index among the parent GPU's MIG devices, as NVML numbers them.
    pub index: u32,
    /// `MIG-...` UUID, the form `CUDA_VISIBLE_DEVICES` takes.
    pub uuid: String,
    /// GPU instance profile, e.g. `3g.71gb`.
    pub profile: String,
    /// Device memory of the instance, in bytes.
    pub memory_total_bytes: Option<u64>,
}

/// Reads the driver and every GPU.
pub fn host_gpus() -> Result<HostGpus, GpuError> {
    #[cfg(feature = "cuda")]
    {
        nvml::host_gpus()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(GpuError::NotBuilt)
    }
}

/// Reads one GPU by NVML index.
pub fn gpu_info(gpu_index: u32) -> Result<GpuInfo, GpuError> {
    let host = host_gpus()?;
    let n_gpus = host.gpus.len();
    host.gpus
        .into_iter()
        .find(|gpu| gpu.index == gpu_index)
        .ok_or(GpuError::NoSuchGpu { gpu_index, n_gpus })
}

/// The MIG profile in a MIG device's name: NVML names them `NVIDIA H200 MIG 3g.71gb`.
pub fn profile_from_mig_name(name: &str) -> String {
    match name.rfind("MIG ") {
        Some(at) => name[at + "MIG ".len()..].trim().to_string(),
        None => name.trim().to_string(),
    }
}

impl fmt::Display for ComputeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComputeMode::Default => "Default",
            ComputeMode::ExclusiveThread => "Exclusive_Thread",
            ComputeMode::Prohibited => "Prohibited",
            ComputeMode::ExclusiveProcess => "Exclusive_Process",
        })
    }
}

impl fmt::Display for MigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = |enabled: bool| if enabled { "enabled" } else { "disabled" };
        match self {
            MigState::NotSupported => f.write_str("not supported"),
            MigState::Disabled { pending_enabled } => {
                write!(f, "disabled (pending: {})", pending(*pending_enabled))
            }
            MigState::Enabled {
                pending_enabled,
                instances,
            } => write!(
                f,
                "enabled (pending: {}), {} instance(s)",
                pending(*pending_enabled),
                instances.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_the_part_after_mig() {
        assert_eq!(profile_from_mig_name("NVIDIA H200 MIG 3g.71gb"), "3g.71gb");
        assert_eq!(
            profile_from_mig_name("NVIDIA A100-SXM4-40GB MIG 1g.5gb"),
            "1g.5gb"
        );
        assert_eq!(profile_from_mig_name("1g.18gb"), "1g.18gb");
    }

    #[test]
    fn mig_state_reads_as_nvidia_smi_would() {
        let state = MigState::Disabled {
            pending_enabled: true,
        };
        assert_eq!(state.to_string(), "disabled (pending: enabled)");
    }
}
