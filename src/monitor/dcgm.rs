//! Prometheus text with NVIDIA dcgm-exporter's metric names and labels
//! (<https://github.com/NVIDIA/dcgm-exporter>, its default counters:
//! `DCGM_FI_DEV_GPU_UTIL`, `DCGM_FI_DEV_POWER_USAGE`, ...), so dashboards built for
//! dcgm-exporter show `gpushare monitor` too. Units are DCGM's: percent, MiB, MHz, watts,
//! millijoules, degrees Celsius. A metric missing from the sample is left out.

use super::exposition::{self, escape};
use super::series::Sample;
use crate::gpu::GpuInfo;

/// The GPU a sample belongs to, as dcgm-exporter labels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuLabels {
    /// NVML index.
    pub gpu: u32,
    /// `GPU-...` UUID (empty when unknown).
    pub uuid: String,
    /// Product name, e.g. `NVIDIA H200`.
    pub model_name: String,
    /// Host name, as dcgm-exporter's `Hostname` label.
    pub hostname: String,
}

impl GpuLabels {
    /// The labels of a GPU NVML lists, on host `hostname`.
    pub fn of(gpu: &GpuInfo, hostname: &str) -> GpuLabels {
        GpuLabels {
            gpu: gpu.index,
            uuid: gpu.uuid.clone(),
            model_name: gpu.name.clone(),
            hostname: hostname.to_string(),
        }
    }

    /// dcgm-exporter's label set, as the text between a series' braces.
    fn text(&self) -> String {
        format!(
            "gpu=\"{}\",UUID=\"{}\",device=\"nvidia{}\",modelName=\"{}\",Hostname=\"{}\"",
            self.gpu,
            escape(&self.uuid),
            self.gpu,
            escape(&self.model_name),
            escape(&self.hostname)
        )
    }
}

/// Renders the samples of several GPUs; each family's HELP and TYPE lines appear once.
/// `names` gives a process's name from its pid.
pub fn render(gpus: &[(GpuLabels, Sample)], names: &dyn Fn(u32) -> String) -> String {
    type Pick = fn(&Sample) -> Option<f64>;
    let families: [(&str, &str, &str, Pick); 10] = [
        (
            "DCGM_FI_DEV_GPU_UTIL",
            "gauge",
            "GPU utilization (in %).",
            |s| s.util_gpu_pct.map(f64::from),
        ),
        (
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "gauge",
            "Memory utilization (in %).",
            |s| s.util_memory_pct.map(f64::from),
        ),
        (
            "DCGM_FI_DEV_FB_USED",
            "gauge",
            "Framebuffer memory used (in MiB).",
            |s| s.memory_used_bytes.map(|b| (b >> 20) as f64),
        ),
        (
            "DCGM_FI_DEV_FB_FREE",
            "gauge",
            "Framebuffer memory free (in MiB).",
            |s| {
                s.memory_total_bytes
                    .zip(s.memory_used_bytes)
                    .map(|(t, u)| (t.saturating_sub(u) >> 20) as f64)
            },
        ),
        (
            "DCGM_FI_DEV_SM_CLOCK",
            "gauge",
            "SM clock frequency (in MHz).",
            |s| s.sm_clock_mhz.map(f64::from),
        ),
        (
            "DCGM_FI_DEV_MEM_CLOCK",
            "gauge",
            "Memory clock frequency (in MHz).",
            |s| s.memory_clock_mhz.map(f64::from),
        ),
        (
            "DCGM_FI_DEV_POWER_USAGE",
            "gauge",
            "Power draw (in W).",
            |s| s.power_w,
        ),
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "counter",
            "Total energy consumption since boot (in mJ).",
            |s| s.energy_mj.map(|e| e as f64),
        ),
        (
            "DCGM_FI_DEV_GPU_TEMP",
            "gauge",
            "GPU temperature (in C).",
            |s| s.temperature_c.map(f64::from),
        ),
        (
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
            "gauge",
            "Throttling reasons bitmask (NVML clocks event reasons).",
            |s| {
                s.throttle_reasons
                    .as_ref()
                    .map(|r| f64::from(throttle_mask(r)))
            },
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, pick) in families {
        let rows: Vec<(String, f64)> = gpus
            .iter()
            .filter_map(|(labels, sample)| pick(sample).map(|v| (labels.text(), v)))
            .collect();
        exposition::family(&mut out, name, kind, help, &rows);
    }
    // dcgm-exporter has no per-process figures: gpushare's own names, with the process.
    let processes: [(&str, &str, ProcessPick); 2] = [
        (
            "gpushare_process_memory_used_bytes",
            "Device memory a process has allocated.",
            |p| p.memory_used_bytes.map(|b| b as f64),
        ),
        (
            "gpushare_process_sm_utilization_ratio",
            "A process's SM utilization over NVML's latest sample period.",
            |p| p.util_sm_pct.map(|u| f64::from(u) / 100.0),
        ),
    ];
    for (name, help, pick) in processes {
        let rows: Vec<(String, f64)> = gpus
            .iter()
            .flat_map(|(l, s)| {
                s.processes.iter().filter_map(move |p| {
                    let labels = format!(
                        "gpu=\"{}\",pid=\"{}\",process=\"{}\"",
                        l.gpu,
                        p.pid,
                        escape(&names(p.pid))
                    );
                    pick(p).map(|v| (labels, v))
                })
            })
            .collect();
        exposition::family(&mut out, name, "gauge", help, &rows);
    }
    out
}

type ProcessPick = fn(&super::series::ProcessSample) -> Option<f64>;

/// NVML's clock event reason bits (`nvmlClocksEventReason*`) for the names the monitor
/// records.
pub fn throttle_mask(reasons: &[String]) -> u32 {
    reasons
        .iter()
        .map(|r| match r.as_str() {
            "gpu_idle" => 0x1,
            "applications_clocks_setting" => 0x2,
            "sw_power_cap" => 0x4,
            "hw_slowdown" => 0x8,
            "sync_boost" => 0x10,
            "sw_thermal_slowdown" => 0x20,
            "hw_thermal_slowdown" => 0x40,
            "hw_power_brake_slowdown" => 0x80,
            "display_clock_setting" => 0x100,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcgm_names_units_and_labels() {
        let labels = GpuLabels {
            gpu: 0,
            uuid: "GPU-1".into(),
            model_name: "NVIDIA H200".into(),
            hostname: "host".into(),
        };
        let sample = Sample {
            util_gpu_pct: Some(87),
            memory_used_bytes: Some(3 << 30),
            memory_total_bytes: Some(4 << 30),
            power_w: Some(512.5),
            throttle_reasons: Some(vec!["sw_power_cap".into(), "gpu_idle".into()]),
            processes: vec![crate::monitor::ProcessSample {
                pid: 42,
                memory_used_bytes: Some(1024),
                ..Default::default()
            }],
            ..Sample::default()
        };
        let text = render(&[(labels, sample)], &|_| "python3".into());
        let l = "{gpu=\"0\",UUID=\"GPU-1\",device=\"nvidia0\",modelName=\"NVIDIA H200\",Hostname=\"host\"}";
        assert!(
            text.contains(&format!("DCGM_FI_DEV_GPU_UTIL{l} 87\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("DCGM_FI_DEV_FB_USED{l} 3072\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("DCGM_FI_DEV_FB_FREE{l} 1024\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("DCGM_FI_DEV_POWER_USAGE{l} 512.5\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{l} 5\n")),
            "{text}"
        );
        assert!(text.contains("# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"));
        assert!(
            !text.contains("DCGM_FI_DEV_SM_CLOCK"),
            "absent metrics are left out"
        );
        assert!(text.contains(
            "gpushare_process_memory_used_bytes{gpu=\"0\",pid=\"42\",process=\"python3\"} 1024\n"
        ));
        assert!(!text.contains("gpushare_process_sm_utilization_ratio"));
    }
}
