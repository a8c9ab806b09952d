//! Prometheus text exposition (format 0.0.4) of one [`Sample`], for `gpushare monitor
//! --listen`. Names follow Prometheus conventions: base units (`_bytes`, `_watts`,
//! `_hertz`, `_celsius`), ratios in 0..1, `_total` for the energy counter
//! (<https://prometheus.io/docs/practices/naming/>). A metric missing from the sample is
//! left out, never written as 0.

use std::fmt::Write;

use super::series::Sample;

/// Every clock event reason the monitor names, so each is exported as 0 or 1.
const THROTTLE_REASONS: &[&str] = &[
    "gpu_idle",
    "applications_clocks_setting",
    "sw_power_cap",
    "hw_slowdown",
    "sync_boost",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "display_clock_setting",
];

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    /// Writes the HELP and TYPE lines and then the values that are present; writes
    /// nothing when none is.
    fn write(&mut self, name: &str, kind: &str, help: &str, values: &[(String, Option<f64>)]) {
        if values.iter().all(|(_, v)| v.is_none()) {
            return;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in values {
            if let Some(value) = value {
                let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
            }
        }
    }
}

/// Renders `sample` of GPU `gpu_index` as Prometheus text.
pub fn render(gpu_index: u32, sample: &Sample) -> String {
    let mut out = String::new();
    let gpu = format!("gpu=\"{gpu_index}\"");
    let one = |v: Option<f64>| vec![(gpu.clone(), v)];
    let pct = |v: Option<u32>| v.map(|p| f64::from(p) / 100.0);
    let mhz = |v: Option<u32>| v.map(|m| f64::from(m) * 1e6);
    let mut f = Family { out: &mut out };
    f.write(
        "gpushare_gpu_utilization_ratio",
        "gauge",
        "Fraction of the last NVML sample period during which a kernel ran.",
        &one(pct(sample.util_gpu_pct)),
    );
    f.write(
        "gpushare_gpu_memory_utilization_ratio",
        "gauge",
        "Fraction of the last NVML sample period during which device memory was accessed.",
        &one(pct(sample.util_memory_pct)),
    );
    f.write(
        "gpushare_gpu_memory_used_bytes",
        "gauge",
        "Device memory allocated.",
        &one(sample.memory_used_bytes.map(|b| b as f64)),
    );
    f.write(
        "gpushare_gpu_memory_total_bytes",
        "gauge",
        "Device memory installed.",
        &one(sample.memory_total_bytes.map(|b| b as f64)),
    );
    f.write(
        "gpushare_gpu_sm_clock_hertz",
        "gauge",
        "Current SM clock.",
        &one(mhz(sample.sm_clock_mhz)),
    );
    f.write(
        "gpushare_gpu_memory_clock_hertz",
        "gauge",
        "Current memory clock.",
        &one(mhz(sample.memory_clock_mhz)),
    );
    f.write(
        "gpushare_gpu_power_watts",
        "gauge",
        "Board power draw.",
        &one(sample.power_w),
    );
    f.write(
        "gpushare_gpu_energy_joules_total",
        "counter",
        "Energy used since the driver was loaded.",
        &one(sample.energy_mj.map(|mj| mj as f64 / 1e3)),
    );
    f.write(
        "gpushare_gpu_temperature_celsius",
        "gauge",
        "GPU die temperature.",
        &one(sample.temperature_c.map(f64::from)),
    );
    if let Some(reasons) = &sample.throttle_reasons {
        let values: Vec<(String, Option<f64>)> = THROTTLE_REASONS
            .iter()
            .map(|r| {
                let active = reasons.iter().any(|x| x == r);
                (
                    format!("{gpu},reason=\"{r}\""),
                    Some(if active { 1.0 } else { 0.0 }),
                )
            })
            .collect();
        f.write(
            "gpushare_gpu_clock_event_reason",
            "gauge",
            "1 while this reason holds the clocks below their maximum.",
            &values,
        );
    }
    let process = |value: fn(&super::series::ProcessSample) -> Option<f64>| {
        sample
            .processes
            .iter()
            .map(|p| {
                (
                    format!("{gpu},pid=\"{}\",mps_client=\"{}\"", p.pid, p.mps_client),
                    value(p),
                )
            })
            .collect::<Vec<_>>()
    };
    f.write(
        "gpushare_process_memory_used_bytes",
        "gauge",
        "Device memory a process has allocated.",
        &process(|p| p.memory_used_bytes.map(|b| b as f64)),
    );
    f.write(
        "gpushare_process_sm_utilization_ratio",
        "gauge",
        "A process's SM utilization over NVML's latest sample period.",
        &process(|p| p.util_sm_pct.map(|u| f64::from(u) / 100.0)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::series::ProcessSample;

    #[test]
    fn renders_present_metrics_with_labels_and_leaves_absent_ones_out() {
        let sample = Sample {
            t_s: 1.0,
            util_gpu_pct: Some(87),
            sm_clock_mhz: Some(1980),
            energy_mj: Some(1_234_567),
            throttle_reasons: Some(vec!["sw_power_cap".into()]),
            processes: vec![ProcessSample {
                pid: 4242,
                mps_client: false,
                memory_used_bytes: Some(1024),
                util_sm_pct: None,
                util_memory_pct: None,
            }],
            ..Sample::default()
        };
        let text = render(0, &sample);
        insta::assert_snapshot!(text);
        assert!(!text.contains("gpushare_gpu_power_watts"));
        assert!(!text.contains("gpushare_process_sm_utilization_ratio"));
    }

    #[test]
    fn every_line_is_a_comment_or_a_name_labels_value_triple() {
        let text = render(1, &Sample::default());
        assert_eq!(text, "");
        let sample = Sample {
            power_w: Some(512.25),
            throttle_reasons: Some(Vec::new()),
            ..Sample::default()
        };
        for line in render(1, &sample).lines() {
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(series.contains("{gpu=\"1\""), "{line}");
            value.parse::<f64>().unwrap();
        }
    }
}
