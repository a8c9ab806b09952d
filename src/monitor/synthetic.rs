//! A synthetic [`GpuSource`]: plausible, deterministic readings with no GPU, so the
//! sampler, summaries and exporters are tested on any machine and the sampler's own
//! overhead can be measured apart from NVML's. Never presented as GPU data: its name
//! says "synthetic GPU".

use std::time::Instant;

use super::sampler::{GpuSource, Reading};
use super::series::{Missing, NoteKind, ProcessSample, Sample};

/// Steady 400 W and 1980 MHz, utilization cycling 0-90%, one process with 1 GiB, and an
/// energy counter that integrates the power exactly.
pub struct SyntheticSource {
    created: Instant,
    readings: u64,
    power_missing: Option<String>,
}

const POWER_W: f64 = 400.0;

impl SyntheticSource {
    pub fn new() -> Self {
        SyntheticSource {
            created: Instant::now(),
            readings: 0,
            power_missing: None,
        }
    }

    /// Reports power as unsupported with `message`, as a GPU without a power sensor would.
    pub fn without_power(mut self, message: &str) -> Self {
        self.power_missing = Some(message.to_string());
        self
    }
}

impl Default for SyntheticSource {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuSource for SyntheticSource {
    fn gpu_name(&self) -> Option<String> {
        Some("synthetic GPU".into())
    }

    fn sample(&mut self, slow: bool) -> Reading {
        let elapsed_s = self.created.elapsed().as_secs_f64();
        let util = (self.readings % 10) as u32 * 10;
        self.readings += 1;
        let mut missing = Vec::new();
        let power_w = match &self.power_missing {
            None => Some(POWER_W),
            Some(message) => {
                missing.push(Missing {
                    metric: "power_w",
                    kind: NoteKind::Unsupported,
                    message: message.clone(),
                });
                None
            }
        };
        Reading {
            sample: Sample {
                t_s: 0.0,
                util_gpu_pct: Some(util),
                util_memory_pct: Some(util / 2),
                memory_used_bytes: Some(1 << 30),
                memory_total_bytes: Some(80 << 30),
                sm_clock_mhz: Some(1980),
                memory_clock_mhz: Some(2619),
                power_w,
                energy_mj: slow.then_some((POWER_W * elapsed_s * 1e3) as u64),
                temperature_c: Some(45),
                throttle_reasons: Some(Vec::new()),
                processes: if slow {
                    vec![ProcessSample {
                        pid: std::process::id(),
                        mps_client: false,
                        memory_used_bytes: Some(1 << 30),
                        util_sm_pct: Some(util),
                        util_memory_pct: Some(util / 2),
                    }]
                } else {
                    Vec::new()
                },
            },
            missing,
        }
    }
}
