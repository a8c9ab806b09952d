//! What the monitor records: one [`Sample`] per tick with per-process rows, the notes on
//! metrics the GPU does not report, and the whole [`MonitorSeries`] as it is saved in
//! run results. Times are seconds since the monitor started.

use serde::{Deserialize, Serialize};

/// One reading of the GPU. A metric the GPU, driver or permissions do not provide is
/// `None` (and said once in [`MonitorSeries::notes`]), never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the reading started, in seconds since the monitor started.
    pub t_s: f64,
    /// Percent of NVML's last sample period (1/6 s to 1 s by device) during which one or
    /// more kernels ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_gpu_pct: Option<u32>,
    /// Percent of NVML's last sample period during which device memory was read or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_memory_pct: Option<u32>,
    /// Device memory allocated, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// Device memory installed, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// Current SM clock, in MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<u32>,
    /// Current memory clock, in MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_clock_mhz: Option<u32>,
    /// Board power draw, in watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    /// Energy counter: energy used since the driver was last loaded, in millijoules. A slow
    /// metric: read only every `MonitorSeries::slow_interval_ms`, so absent from the samples
    /// in between without a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mj: Option<u64>,
    /// GPU die temperature, in degrees Celsius.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    /// Why clocks are below their maximum, as snake_case names of NVML's clock event
    /// reasons (`sw_power_cap`, `hw_thermal_slowdown`, `gpu_idle`, ...); empty when
    /// nothing holds them back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_reasons: Option<Vec<String>>,
    /// One row per process with a compute context on the GPU. Slow metrics, like
    /// `energy_mj`: empty on the samples between slow readings.
    #[serde(default)]
    pub processes: Vec<ProcessSample>,
}

/// One process's use of the GPU at a sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Process id as the driver sees it (the host's, outside a PID namespace).
    pub pid: u32,
    /// True for an MPS client (listed by NVML's MPS query) rather than a plain context.
    #[serde(default)]
    pub mps_client: bool,
    /// Device memory the process has allocated, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// The process's SM utilization over NVML's latest sample period, in percent; `None`
    /// when NVML kept no sample for it since the previous reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_sm_pct: Option<u32>,
    /// The process's memory-interface utilization, in percent, like `util_sm_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_memory_pct: Option<u32>,
}

/// Why a metric is missing from samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// The GPU, driver or permissions do not provide it (NVML `NotSupported`,
    /// `NoPermission`, `NotFound`, or a driver without the function).
    Unsupported,
    /// Reading it failed for another reason; it may come back at later samples.
    Failed,
}

/// A metric missing from samples, said once however often it was missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The sample field it concerns, for example `power_w`.
    pub metric: String,
    pub kind: NoteKind,
    /// What NVML said the first time.
    pub message: String,
    /// When it was first missing, in seconds since the monitor started.
    pub first_t_s: f64,
    /// Samples it was missing from.
    pub count: u64,
}

/// Everything one monitor run recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSeries {
    /// GPU index the monitor read (NVML's ordering).
    pub gpu_index: u32,
    /// The GPU's name, when the source could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_name: Option<String>,
    /// Configured time between samples, in milliseconds.
    pub interval_ms: u64,
    /// Configured time between readings of the slow metrics (the energy counter and the
    /// per-process rows), in milliseconds; samples in between have neither. Absent in
    /// results from before it existed (every sample had them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_interval_ms: Option<u64>,
    /// Wall time from start to stop, in seconds.
    pub duration_s: f64,
    /// CPU time (user plus system) the sampler thread used, in seconds: the monitor's own
    /// overhead. `None` where the platform cannot measure one thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_cpu_s: Option<f64>,
    /// CPU time the sampler thread had used when its first reading ended, in seconds: that
    /// reading pays NVML's one-time set-up, which a short run should not count as the
    /// per-sample cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reading_cpu_s: Option<f64>,
    /// When the first reading ended, in seconds since the monitor started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reading_end_s: Option<f64>,
    pub samples: Vec<Sample>,
    pub notes: Vec<Note>,
}

impl MonitorSeries {
    /// The sampler thread's CPU use as a fraction of one core over the run.
    pub fn sampler_cpu_fraction(&self) -> Option<f64> {
        let cpu_s = self.sampler_cpu_s?;
        (self.duration_s > 0.0).then(|| cpu_s / self.duration_s)
    }

    /// The sampler thread's CPU use as a fraction of one core after its first reading:
    /// the steady cost, without NVML's one-time set-up.
    pub fn sampler_steady_cpu_fraction(&self) -> Option<f64> {
        let cpu_s = self.sampler_cpu_s? - self.first_reading_cpu_s?;
        let wall_s = self.duration_s - self.first_reading_end_s?;
        (wall_s > 0.0).then(|| cpu_s.max(0.0) / wall_s)
    }
}

/// What a source reports as missing from one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// The sample field it concerns, for example `power_w`.
    pub metric: &'static str,
    pub kind: NoteKind,
    pub message: String,
}

/// The notes of a run: one per metric and kind, with a count.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notes {
    notes: Vec<Note>,
}

impl Notes {
    pub(crate) fn record(&mut self, missing: Missing, t_s: f64) {
        match self
            .notes
            .iter_mut()
            .find(|n| n.metric == missing.metric && n.kind == missing.kind)
        {
            Some(note) => note.count += 1,
            None => self.notes.push(Note {
                metric: missing.metric.to_string(),
                kind: missing.kind,
                message: missing.message,
                first_t_s: t_s,
                count: 1,
            }),
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Note> {
        self.notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(metric: &'static str, kind: NoteKind, message: &str) -> Missing {
        Missing {
            metric,
            kind,
            message: message.to_string(),
        }
    }

    #[test]
    fn a_metric_missing_many_times_is_one_note_with_a_count() {
        let mut notes = Notes::default();
        for k in 0..5 {
            notes.record(
                missing("power_w", NoteKind::Unsupported, "not supported"),
                k as f64,
            );
        }
        notes.record(missing("power_w", NoteKind::Failed, "gpu lost"), 9.0);
        let notes = notes.into_vec();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].count, 5);
        assert_eq!(notes[0].first_t_s, 0.0);
        assert_eq!(notes[1].kind, NoteKind::Failed);
    }

    #[test]
    fn absent_metrics_are_left_out_of_json_not_written_as_zero() {
        let sample = Sample {
            t_s: 0.5,
            power_w: Some(312.5),
            ..Sample::default()
        };
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(json, r#"{"t_s":0.5,"power_w":312.5,"processes":[]}"#);
        let back: Sample = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample);
    }

    #[test]
    fn cpu_fraction_needs_a_duration() {
        let series = MonitorSeries {
            duration_s: 10.0,
            sampler_cpu_s: Some(0.05),
            ..MonitorSeries::default()
        };
        assert_eq!(series.sampler_cpu_fraction(), Some(0.005));
        let empty = MonitorSeries::default();
        assert_eq!(empty.sampler_cpu_fraction(), None);
    }

    #[test]
    fn the_steady_fraction_leaves_out_the_first_reading() {
        let series = MonitorSeries {
            duration_s: 10.0,
            sampler_cpu_s: Some(0.05),
            first_reading_cpu_s: Some(0.032),
            first_reading_end_s: Some(1.0),
            ..MonitorSeries::default()
        };
        let steady = series.sampler_steady_cpu_fraction().unwrap();
        assert!((steady - 0.002).abs() < 1e-12, "{steady}");
        let older = MonitorSeries {
            first_reading_cpu_s: None,
            ..series
        };
        assert_eq!(older.sampler_steady_cpu_fraction(), None);
    }
}
