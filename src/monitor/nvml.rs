//! The NVML [`GpuSource`]: device utilization, memory, clocks, power, energy,
//! temperature, clock event reasons, and per-process memory and utilization.
//!
//! NVML answers `NotSupported`, `NoPermission` or `NotFound` for metrics a GPU, driver or
//! user cannot have (power on some boards, per-process data in some containers); those
//! become [`NoteKind::Unsupported`] notes. `nvmlDeviceGetProcessUtilization` answers
//! `NotFound` when no process has used the GPU since its last buffered sample: that is
//! "no samples", not a missing metric
//! (<https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html>).

use std::collections::BTreeMap;

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::Nvml;

use super::sampler::{GpuSource, Reading};
use super::series::{Missing, NoteKind, ProcessSample, Sample};
use super::MonitorError;

/// Reads one GPU through NVML.
pub struct NvmlSource {
    nvml: Nvml,
    gpu_index: u32,
    /// NVML's timestamp (microseconds) of the newest per-process utilization sample seen,
    /// so each reading asks only for newer ones.
    last_process_sample_us: u64,
}

impl NvmlSource {
    /// Initializes NVML and checks that GPU `gpu_index` answers.
    pub fn open(gpu_index: u32) -> Result<Self, MonitorError> {
        let nvml = Nvml::init().map_err(|e| MonitorError::NvmlInit {
            reason: e.to_string(),
        })?;
        nvml.device_by_index(gpu_index)
            .map_err(|e| MonitorError::Device {
                gpu_index,
                reason: e.to_string(),
            })?;
        Ok(NvmlSource {
            nvml,
            gpu_index,
            last_process_sample_us: 0,
        })
    }
}

/// Whether an NVML error means the metric does not exist here, rather than a failure.
fn is_unsupported(err: &NvmlError) -> bool {
    matches!(
        err,
        NvmlError::NotSupported
            | NvmlError::NoPermission
            | NvmlError::NotFound
            | NvmlError::FunctionNotFound
            | NvmlError::FailedToLoadSymbol(_)
    )
}

/// The value, or `None` with the reason added to `missing`.
fn read<T>(
    missing: &mut Vec<Missing>,
    metric: &'static str,
    result: Result<T, NvmlError>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            missing.push(Missing {
                metric,
                kind: if is_unsupported(&err) {
                    NoteKind::Unsupported
                } else {
                    NoteKind::Failed
                },
                message: err.to_string(),
            });
            None
        }
    }
}

/// NVML's clock event reasons as snake_case names, in NVML's bit order. `NONE` (no bit
/// set) has no name: an empty list means nothing holds the clocks back.
pub fn throttle_reason_names(reasons: ThrottleReasons) -> Vec<String> {
    const NAMES: &[(ThrottleReasons, &str)] = &[
        (ThrottleReasons::GPU_IDLE, "gpu_idle"),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            "applications_clocks_setting",
        ),
        (ThrottleReasons::SW_POWER_CAP, "sw_power_cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
        (ThrottleReasons::SYNC_BOOST, "sync_boost"),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            "hw_power_brake_slowdown",
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            "display_clock_setting",
        ),
    ];
    NAMES
        .iter()
        .filter(|(flag, _)| reasons.contains(*flag))
        .map(|(_, name)| name.to_string())
        .collect()
}

fn process_rows(infos: Vec<ProcessInfo>, mps_client: bool) -> impl Iterator<Item = ProcessSample> {
    infos.into_iter().map(move |info| ProcessSample {
        pid: info.pid,
        mps_client,
        memory_used_bytes: match info.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes),
            UsedGpuMemory::Unavailable => None,
        },
        util_sm_pct: None,
        util_memory_pct: None,
    })
}

impl GpuSource for NvmlSource {
    fn gpu_name(&self) -> Option<String> {
        self.nvml.device_by_index(self.gpu_index).ok()?.name().ok()
    }

    fn sample(&mut self, slow: bool) -> Reading {
        let mut missing = Vec::new();
        let device = match self.nvml.device_by_index(self.gpu_index) {
            Ok(device) => device,
            Err(err) => {
                read::<()>(&mut missing, "all", Err(err));
                return Reading {
                    sample: Sample::default(),
                    missing,
                };
            }
        };
        let m = &mut missing;
        let utilization = read(m, "util_gpu_pct", device.utilization_rates());
        let memory = read(m, "memory_used_bytes", device.memory_info());
        let mut sample = Sample {
            t_s: 0.0,
            util_gpu_pct: utilization.as_ref().map(|u| u.gpu),
            util_memory_pct: utilization.as_ref().map(|u| u.memory),
            memory_used_bytes: memory.as_ref().map(|mem| mem.used),
            memory_total_bytes: memory.as_ref().map(|mem| mem.total),
            sm_clock_mhz: read(m, "sm_clock_mhz", device.clock_info(Clock::SM)),
            memory_clock_mhz: read(m, "memory_clock_mhz", device.clock_info(Clock::Memory)),
            power_w: read(m, "power_w", device.power_usage()).map(|mw| f64::from(mw) / 1e3),
            energy_mj: if slow {
                read(m, "energy_mj", device.total_energy_consumption())
            } else {
                None
            },
            temperature_c: read(
                m,
                "temperature_c",
                device.temperature(TemperatureSensor::Gpu),
            ),
            throttle_reasons: read(m, "throttle_reasons", device.current_throttle_reasons())
                .map(throttle_reason_names),
            processes: Vec::new(),
        };

        if slow {
            sample.processes = process_rows_now(&device, &mut self.last_process_sample_us, m);
        }
        Reading { sample, missing }
    }
}

/// One row per process with a compute context, with its memory and its newest
/// utilization sample newer than `last_sample_us` (NVML's timestamp, moved forward).
fn process_rows_now(
    device: &nvml_wrapper::Device<'_>,
    last_sample_us: &mut u64,
    m: &mut Vec<Missing>,
) -> Vec<ProcessSample> {
    let mut rows: Vec<ProcessSample> = Vec::new();
    if let Some(infos) = read(m, "processes", device.running_compute_processes()) {
        rows.extend(process_rows(infos, false));
    }
    if let Some(infos) = read(m, "mps_processes", device.mps_running_compute_processes()) {
        for row in process_rows(infos, true) {
            // An MPS client can be listed by both queries; keep its MPS row.
            rows.retain(|r| r.pid != row.pid);
            rows.push(row);
        }
    }
    let utilization = match device.process_utilization_stats(*last_sample_us) {
        Err(NvmlError::NotFound) => Some(Vec::new()),
        other => read(m, "process_util_sm_pct", other),
    };
    // NVML may return several samples per process; the newest one stands for it.
    let mut newest: BTreeMap<u32, (u64, u32, u32)> = BTreeMap::new();
    for s in utilization.into_iter().flatten() {
        *last_sample_us = (*last_sample_us).max(s.timestamp);
        let entry = newest
            .entry(s.pid)
            .or_insert((s.timestamp, s.sm_util, s.mem_util));
        if s.timestamp >= entry.0 {
            *entry = (s.timestamp, s.sm_util, s.mem_util);
        }
    }
    for row in &mut rows {
        if let Some((_, sm, mem)) = newest.get(&row.pid) {
            row.util_sm_pct = Some(*sm);
            row.util_memory_pct = Some(*mem);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_reasons_are_named_once_each_and_none_is_empty() {
        let reasons = ThrottleReasons::SW_POWER_CAP | ThrottleReasons::HW_THERMAL_SLOWDOWN;
        assert_eq!(
            throttle_reason_names(reasons),
            vec!["sw_power_cap", "hw_thermal_slowdown"]
        );
        assert!(throttle_reason_names(ThrottleReasons::NONE).is_empty());
    }

    #[test]
    fn unsupported_errors_are_told_apart_from_failures() {
        let mut missing = Vec::new();
        assert_eq!(
            read::<u32>(&mut missing, "power_w", Err(NvmlError::NotSupported)),
            None
        );
        assert_eq!(
            read::<u32>(&mut missing, "sm_clock_mhz", Err(NvmlError::GpuLost)),
            None
        );
        assert_eq!(read(&mut missing, "temperature_c", Ok(40u32)), Some(40));
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].kind, NoteKind::Unsupported);
        assert_eq!(missing[1].kind, NoteKind::Failed);
    }

    #[test]
    fn opening_gpu_0_agrees_with_what_the_host_has() {
        // Asked independently of the sampler: does NVML load and list a GPU here?
        let host_has_a_gpu = crate::gpu::host_gpus().is_ok_and(|host| !host.gpus.is_empty());
        match NvmlSource::open(0) {
            Ok(_) => assert!(host_has_a_gpu, "GPU 0 opened on a host without a GPU"),
            Err(err) => {
                assert!(!host_has_a_gpu, "GPU 0 did not open on a GPU host: {err}");
                let message = err.to_string();
                assert!(
                    message.starts_with("initializing NVML")
                        || message.starts_with("opening GPU 0"),
                    "{message}"
                );
            }
        }
    }
}
