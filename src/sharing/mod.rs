//! Sharing modes: how tenants share the GPU, what each needs set up, the environment each
//! tenant's worker gets, and the guard that undoes the set-up.
//!
//! One file per mode. A mode is entered once per run and its guard is always undone: on
//! success, on error, and (through `Drop`) on panic or interruption. This module never
//! changes GPU settings (compute mode, MIG layout, clocks); users do that with the
//! `gpu-configs/` scripts on their own hosts.

mod error;
pub mod mig;
pub mod mig_profiles;
pub mod mps;
mod mps_janitor;
mod plain;
mod platform;
mod procs;

pub use error::SharingError;
pub use mig::{MigGuard, MigInventory, MigPlacement};
pub use mps::{MpsConfig, MpsGuard};

use std::fmt;

use serde::{Deserialize, Serialize};

/// A sharing mode with its parameters, after sweep expansion: one point of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum ModeSetting {
    /// Each tenant alone, one after another: the isolated baseline.
    Exclusive,
    /// All tenants at once as separate processes, under the driver's default scheduling.
    TimeSlicing,
    /// NVIDIA Multi-Process Service.
    Mps(MpsSetting),
    /// Tenants on existing MIG instances.
    Mig(MigSetting),
}

/// MPS parameters applied to every tenant unless a tenant overrides them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MpsSetting {
    /// Share of the GPU's SMs each client may use, in percent (1-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_thread_percentage: Option<u32>,
    /// Device memory each client may pin, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_memory_limit_mib: Option<u64>,
}

/// MIG placement: the GPU instance profile tenants run on (for example `3g.71gb`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigSetting {
    pub profile: String,
}

/// A tenant's own sharing parameters, overriding the mode's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantSharing {
    /// MPS active-thread percentage for this tenant, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps_active_thread_percentage: Option<u32>,
    /// MPS pinned device-memory limit for this tenant, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps_pinned_memory_limit_mib: Option<u64>,
    /// MIG profile for this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_profile: Option<String>,
}

impl ModeSetting {
    /// The mode's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            ModeSetting::Exclusive => "exclusive",
            ModeSetting::TimeSlicing => "time-slicing",
            ModeSetting::Mps(_) => "mps",
            ModeSetting::Mig(_) => "mig",
        }
    }

    /// Whether tenants run at the same time under this mode.
    pub fn concurrent(&self) -> bool {
        !matches!(self, ModeSetting::Exclusive)
    }
}

/// A short label with the parameters, used in run ids and reports: `mps(atp=50)`.
impl fmt::Display for ModeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeSetting::Mps(mps) => {
                let mut parts = Vec::new();
                if let Some(p) = mps.active_thread_percentage {
                    parts.push(format!("atp={p}"));
                }
                if let Some(m) = mps.pinned_memory_limit_mib {
                    parts.push(format!("mem={m}MiB"));
                }
                if parts.is_empty() {
                    write!(f, "mps")
                } else {
                    write!(f, "mps({})", parts.join(","))
                }
            }
            ModeSetting::Mig(mig) => write!(f, "mig({})", mig.profile),
            other => write!(f, "{}", other.name()),
        }
    }
}

/// What a mode found and did, recorded with each run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeRecord {
    /// Facts worth keeping with the results (compute mode found, daemon directories).
    pub notes: Vec<String>,
}

/// What a mode needs to know about the run it is entered for.
#[derive(Debug, Clone, Default)]
pub struct ModeContext {
    /// NVML index of the GPU the tenants share. Under MPS it is also the CUDA device
    /// ordinal the pinned-memory limits name, so it assumes tenants see all GPUs in NVML
    /// order (true on one-GPU hosts and with `CUDA_DEVICE_ORDER=PCI_BUS_ID`).
    pub gpu_index: u32,
    /// The run's id; names the MPS directories and appears in notes.
    pub run_id: String,
    /// One entry per worker, in the order [`ModeGuard::tenant_env`] numbers them: a tenant
    /// with replicas appears once per replica.
    pub workers: Vec<WorkerSharing>,
    /// Which MPS binaries to run and how long to wait for them.
    pub mps: MpsConfig,
}

/// One worker as a mode sees it: a label for messages and its tenant's overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSharing {
    /// How reports name the worker, e.g. `train.resnet50#1`.
    pub label: String,
    /// The tenant's own sharing parameters.
    pub sharing: TenantSharing,
}

/// A mode that has been entered. Undo it with [`ModeGuard::exit`]; dropping the guard
/// undoes it too, best effort, for the error and panic paths.
pub trait ModeGuard: Send {
    /// Environment variables for worker `worker_idx` (an index into
    /// [`ModeContext::workers`]).
    fn tenant_env(&self, worker_idx: usize) -> Result<Vec<(String, String)>, SharingError>;

    /// What the mode found and did.
    fn record(&self) -> ModeRecord;

    /// Extra context to attach when a tenant fails, such as a daemon's log tail.
    fn failure_context(&self) -> Option<String> {
        None
    }

    /// Undoes the set-up and reports whether that worked.
    fn exit(self: Box<Self>) -> Result<(), SharingError>;
}

/// Sets a mode up for one run. Blocking: starting or stopping the MPS daemon takes up
/// to [`MpsConfig::start_timeout`] / [`MpsConfig::stop_timeout`].
pub fn enter(
    setting: &ModeSetting,
    context: &ModeContext,
) -> Result<Box<dyn ModeGuard>, SharingError> {
    Ok(match setting {
        ModeSetting::Exclusive | ModeSetting::TimeSlicing => {
            Box::new(plain::PlainGuard::enter(setting, context))
        }
        ModeSetting::Mps(mps) => Box::new(MpsGuard::enter(mps, context)?),
        ModeSetting::Mig(mig) => Box::new(MigGuard::enter(mig, context)?),
    })
}

/// A mode the platform set up where the workers run (a Kubernetes node's device plugin):
/// nothing to enter or undo here; the record says whose set-up it was.
pub fn set_up_by_platform(setting: &ModeSetting, context: &ModeContext) -> Box<dyn ModeGuard> {
    Box::new(platform::PlatformGuard::new(setting, context))
}

/// The worker's entry, or the error naming how many there are.
fn worker(workers: &[WorkerSharing], worker_idx: usize) -> Result<&WorkerSharing, SharingError> {
    workers.get(worker_idx).ok_or(SharingError::NoSuchWorker {
        worker_idx,
        n_workers: workers.len(),
    })
}
