//! The NVML reads behind [`super::host_gpus`]: a thin layer that turns NVML answers into
//! this module's plain types, so everything that decides anything builds and is tested
//! without NVML. Reads only; never calls an NVML setter.

use nvml_wrapper::enum_wrappers::device::ComputeMode as NvmlComputeMode;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::{
    profile_from_mig_name, ComputeMode, GpuError, GpuInfo, HostGpus, MigInstance, MigState,
};

/// `NVML_DEVICE_MIG_ENABLE` from nvml.h: the value `nvmlDeviceGetMigMode` reports for "on".
const NVML_DEVICE_MIG_ENABLE: u32 = 1;

pub(super) fn host_gpus() -> Result<HostGpus, GpuError> {
    let nvml = Nvml::init().map_err(|source| GpuError::LoadingNvml { source })?;
    let driver_version = nvml
        .sys_driver_version()
        .map_err(|source| GpuError::Reading {
            what: "the driver version".to_string(),
            source,
        })?;
    // Only informative: an old driver without this call still runs everything.
    let cuda_driver_version = nvml.sys_cuda_driver_version().ok().map(cuda_version_text);
    let n_gpus = nvml.device_count().map_err(|source| GpuError::Reading {
        what: "the number of GPUs".to_string(),
        source,
    })?;
    let mut gpus = Vec::new();
    for index in 0..n_gpus {
        let device = nvml
            .device_by_index(index)
            .map_err(|source| GpuError::Reading {
                what: format!("GPU {index}"),
                source,
            })?;
        gpus.push(gpu_info(index, &device));
    }
    Ok(HostGpus {
        driver_version,
        cuda_driver_version,
        gpus,
    })
}

/// NVML encodes CUDA 13.0 as 13000.
fn cuda_version_text(version: i32) -> String {
    format!("{}.{}", version / 1000, (version % 1000) / 10)
}

fn gpu_info(index: u32, device: &Device<'_>) -> GpuInfo {
    let mut notes = Vec::new();
    let name = answer(device.name(), "name", &mut notes).unwrap_or_else(|| "unknown".into());
    let uuid = answer(device.uuid(), "UUID", &mut notes).unwrap_or_else(|| "unknown".into());
    let memory_total_bytes =
        answer(device.memory_info(), "memory size", &mut notes).map(|m| m.total);
    let compute_mode = answer(device.compute_mode(), "compute mode", &mut notes).map(compute_mode);
    let mig = mig_state(device, &mut notes);
    GpuInfo {
        index,
        name,
        uuid,
        memory_total_bytes,
        compute_mode,
        mig,
        notes,
    }
}

/// The value, or `None` with a note saying what NVML could not give and why.
fn answer<T>(result: Result<T, NvmlError>, what: &str, notes: &mut Vec<String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            notes.push(format!("{what}: NVML could not say ({error})"));
            None
        }
    }
}

fn compute_mode(mode: NvmlComputeMode) -> ComputeMode {
    match mode {
        NvmlComputeMode::Default => ComputeMode::Default,
        NvmlComputeMode::ExclusiveThread => ComputeMode::ExclusiveThread,
        NvmlComputeMode::Prohibited => ComputeMode::Prohibited,
        NvmlComputeMode::ExclusiveProcess => ComputeMode::ExclusiveProcess,
    }
}

fn mig_state(device: &Device<'_>, notes: &mut Vec<String>) -> Option<MigState> {
    let mode = match device.mig_mode() {
        Ok(mode) => mode,
        // GPUs before Ampere, and consumer GPUs, answer NotSupported: a fact, not a failure.
        Err(NvmlError::NotSupported) => return Some(MigState::NotSupported),
        Err(error) => {
            notes.push(format!("MIG mode: NVML could not say ({error})"));
            return None;
        }
    };
    let pending_enabled = mode.pending == NVML_DEVICE_MIG_ENABLE;
    if mode.current != NVML_DEVICE_MIG_ENABLE {
        return Some(MigState::Disabled { pending_enabled });
    }
    Some(MigState::Enabled {
        pending_enabled,
        instances: mig_instances(device, notes),
    })
}

fn mig_instances(device: &Device<'_>, notes: &mut Vec<String>) -> Vec<MigInstance> {
    let Some(max_count) = answer(device.mig_device_count(), "MIG device count", notes) else {
        return Vec::new();
    };
    let mut instances = Vec::new();
    // NVML numbers MIG device slots up to the maximum; a slot without an instance answers
    // NotFound (https://docs.nvidia.com/deploy/nvml-api/group__nvmlMultiInstanceGPU.html).
    for index in 0..max_count {
        let mig = match device.mig_device_by_index(index) {
            Ok(mig) => mig,
            Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
            Err(error) => {
                notes.push(format!("MIG device {index}: NVML could not say ({error})"));
                continue;
            }
        };
        let what = format!("MIG device {index}");
        let Some(uuid) = answer(mig.uuid(), &format!("{what} UUID"), notes) else {
            continue;
        };
        let name = answer(mig.name(), &format!("{what} name"), notes).unwrap_or_default();
        let memory_total_bytes =
            answer(mig.memory_info(), &format!("{what} memory size"), notes).map(|m| m.total);
        instances.push(MigInstance {
            index,
            uuid,
            profile: profile_from_mig_name(&name),
            memory_total_bytes,
        });
    }
    instances
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_version_reads_as_major_minor() {
        assert_eq!(cuda_version_text(13000), "13.0");
        assert_eq!(cuda_version_text(12040), "12.4");
    }
}
