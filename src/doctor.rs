//! `gpushare doctor`: what this host has now, CPU and GPUs, read without changing
//! anything.

use std::fmt;

use serde::Serialize;

/// One GPU as NVML reports it.
#[derive(Debug, Clone, Serialize)]
pub struct GpuSummary {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// Total device memory, in bytes.
    pub memory_total_bytes: u64,
}

/// What `gpushare doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub cpu_model: String,
    pub n_cpus: usize,
    /// The driver version, when NVML answered.
    pub driver_version: Option<String>,
    pub gpus: Vec<GpuSummary>,
    /// Why no GPU could be read, when none could.
    pub no_gpu_reason: Option<String>,
}

/// Reads the host.
pub fn diagnose() -> DoctorReport {
    let env = crate::environment::Environment::capture();
    let (driver_version, gpus, no_gpu_reason) = match read_gpus() {
        Ok((driver, gpus)) if gpus.is_empty() => (
            Some(driver),
            gpus,
            Some("NVML answered but lists no GPU".to_string()),
        ),
        Ok((driver, gpus)) => (Some(driver), gpus, None),
        Err(reason) => (None, vec![], Some(reason)),
    };
    DoctorReport {
        cpu_model: env.cpu_model,
        n_cpus: env.n_cpus,
        driver_version,
        gpus,
        no_gpu_reason,
    }
}

#[cfg(feature = "cuda")]
fn read_gpus() -> Result<(String, Vec<GpuSummary>), String> {
    let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("NVML could not be loaded ({e})"))?;
    let driver = nvml
        .sys_driver_version()
        .map_err(|e| format!("NVML did not give the driver version ({e})"))?;
    let count = nvml
        .device_count()
        .map_err(|e| format!("NVML did not count GPUs ({e})"))?;
    let mut gpus = vec![];
    for index in 0..count {
        let device = nvml
            .device_by_index(index)
            .map_err(|e| format!("NVML could not open GPU {index} ({e})"))?;
        gpus.push(GpuSummary {
            index,
            name: device.name().unwrap_or_else(|_| "unknown".into()),
            uuid: device.uuid().unwrap_or_else(|_| "unknown".into()),
            memory_total_bytes: device.memory_info().map(|m| m.total).unwrap_or(0),
        });
    }
    Ok((driver, gpus))
}

#[cfg(not(feature = "cuda"))]
fn read_gpus() -> Result<(String, Vec<GpuSummary>), String> {
    Err("this gpushare was built without the `cuda` feature".to_string())
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CPU: {} ({} CPUs)", self.cpu_model, self.n_cpus)?;
        if let Some(reason) = &self.no_gpu_reason {
            writeln!(f, "GPU: no NVIDIA GPU: {reason}")?;
            writeln!(
                f,
                "Only CPU workloads (cpu.synthetic) can run here, e.g. `gpushare run smoke-cpu`."
            )?;
            return Ok(());
        }
        if let Some(driver) = &self.driver_version {
            writeln!(f, "NVIDIA driver {driver}")?;
        }
        for gpu in &self.gpus {
            writeln!(
                f,
                "GPU {}: {} ({}), {:.1} GiB",
                gpu.index,
                gpu.name,
                gpu.uuid,
                gpu.memory_total_bytes as f64 / (1u64 << 30) as f64
            )?;
        }
        Ok(())
    }
}
