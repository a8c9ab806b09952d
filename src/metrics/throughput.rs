//! Per-tenant figures from one run's samples: throughput, its stability over the window,
//! step and latency distributions, SLO attainment.

use serde::{Deserialize, Serialize};

use super::latency::{self, LatencySummary};
use crate::results::schema::TenantRecord;
use crate::scenario::Slo;
use crate::workload::Device;

/// Sub-windows the measured window is cut into to judge throughput stability.
pub const N_SUBWINDOWS: usize = 10;

/// One tenant's figures in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantFigures {
    pub name: String,
    pub workload: String,
    pub device: Device,
    /// The unit of `throughput_items_per_s`.
    pub item: String,
    /// Items completed in the window over the window's length, in items per second.
    pub throughput_items_per_s: f64,
    /// Steps completed in the window.
    pub steps: u64,
    /// Items completed in the window.
    pub items: u64,
    /// Units of work that failed in the window (a serving tenant's failed requests): not
    /// in `items`, and misses against the SLO.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    /// The measured window, in seconds.
    pub window_s: f64,
    /// From Go to the end of the last completed step, in seconds.
    pub measured_span_s: f64,
    /// Coefficient of variation of throughput over equal sub-windows (unitless).
    pub windowed_cv: f64,
    /// Step wall-time distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<LatencySummary>,
    /// Self-measured latency distribution, for workloads that report one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloFigures>,
    /// Normalized progress against the exclusive baseline (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub np: Option<f64>,
    /// Peak device memory, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// GPU energy per item when the tenant had the GPU alone, in joules per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_per_item_j: Option<f64>,
}

/// How a tenant fared against its latency objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloFigures {
    /// The percentile judged, in percent.
    pub percentile: f64,
    /// The target, in milliseconds.
    pub target_ms: f64,
    /// The measured value at that percentile, in milliseconds, over the samples that have
    /// a value (a serving tenant's answered requests).
    pub observed_ms: f64,
    /// Share of samples at or under the target, from 0 to 1; failed units of work count
    /// as samples that missed it.
    pub attainment: f64,
    /// Whether the observed percentile is within the target and, when some units of work
    /// failed, whether at least the percentile's share of all of them (failures ranked
    /// last) met the target: failures can break an SLO, never help one.
    pub met: bool,
    /// Whether there were enough samples, failures included, to state the percentile.
    pub supported: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TenantFigures {
    /// Computes a tenant's figures from its record.
    pub fn of(record: &TenantRecord, slo: Option<&Slo>) -> TenantFigures {
        let samples = &record.samples;
        let measured_span_s = samples.end_s.iter().copied().fold(0.0, f64::max);
        let window_s = record
            .summary
            .as_ref()
            .map_or(measured_span_s, |s| s.window_s);
        let in_window = |end: f64| end <= window_s;
        let items: u64 = samples
            .end_s
            .iter()
            .zip(&samples.items)
            .filter(|(end, _)| in_window(**end))
            .map(|(_, n)| n)
            .sum();
        let steps = samples.end_s.iter().filter(|e| in_window(**e)).count() as u64;
        let failed: u64 = samples
            .end_s
            .iter()
            .enumerate()
            .filter(|(_, end)| in_window(**end))
            .map(|(idx, _)| samples.failed_at(idx))
            .sum();
        let throughput_items_per_s = if window_s > 0.0 {
            items as f64 / window_s
        } else {
            0.0
        };
        let judged = if samples.latency_s.is_empty() {
            &samples.step_s
        } else {
            &samples.latency_s
        };
        let slo = slo.map(|slo| {
            let observed_ms = latency::percentile_ms(judged, slo.percentile);
            let attainment = latency::attainment_with_misses(judged, slo.target_ms, failed);
            SloFigures {
                percentile: slo.percentile,
                target_ms: slo.target_ms,
                observed_ms,
                attainment,
                met: !judged.is_empty()
                    && observed_ms <= slo.target_ms
                    && (failed == 0 || attainment >= slo.percentile / 100.0),
                supported: judged.len() as u64 + failed
                    >= latency::min_samples_for_percentile(slo.percentile),
            }
        });
        TenantFigures {
            name: record.name.clone(),
            workload: record.workload.clone(),
            device: record.device,
            item: record.item.clone(),
            throughput_items_per_s,
            steps,
            items,
            failed,
            window_s,
            measured_span_s,
            windowed_cv: windowed_cv(&samples.end_s, &samples.items, window_s),
            step: LatencySummary::of(&samples.step_s),
            latency: LatencySummary::of(&samples.latency_s),
            slo,
            np: None,
            memory_peak_bytes: record.summary.as_ref().and_then(|s| s.memory_peak_bytes),
            energy_per_item_j: None,
        }
    }
}

/// Coefficient of variation of items completed per sub-window, over [`N_SUBWINDOWS`]
/// equal sub-windows of the window. High values mean throughput changed during the
/// window (a co-tenant starting late, throttling, or too few steps to judge).
pub fn windowed_cv(end_s: &[f64], items: &[u64], window_s: f64) -> f64 {
    if window_s <= 0.0 {
        return 0.0;
    }
    let mut counts = [0.0f64; N_SUBWINDOWS];
    for (end, n) in end_s.iter().zip(items) {
        if *end <= window_s {
            let idx = ((end / window_s) * N_SUBWINDOWS as f64) as usize;
            counts[idx.min(N_SUBWINDOWS - 1)] += *n as f64;
        }
    }
    super::stats::coefficient_of_variation(&counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::schema::Samples;
    use crate::worker::protocol::WorkerSummary;

    fn record(end_s: Vec<f64>, step_s: Vec<f64>, window_s: f64) -> TenantRecord {
        let n = end_s.len();
        TenantRecord {
            name: "a".into(),
            workload: "cpu.synthetic".into(),
            device: Device::Cpu,
            item: "steps".into(),
            seed: 1,
            prepare_s: None,
            samples: Samples {
                end_s,
                step_s,
                items: vec![2; n],
                latency_s: vec![],
                failed: vec![],
            },
            summary: Some(WorkerSummary {
                window_s,
                steps: n as u64,
                items: 2 * n as u64,
                failed: 0,
                memory_peak_bytes: None,
            }),
            exit: None,
            error: None,
        }
    }

    #[test]
    fn throughput_counts_items_completed_within_the_window() {
        // Ten steps in a 1 s window, one in each tenth, two items each: 20 items/s. A
        // step ending after the window does not count.
        let mut ends: Vec<f64> = (0..10).map(|i| (i as f64 + 0.5) / 10.0).collect();
        ends.push(1.05);
        let r = record(ends, vec![0.1; 11], 1.0);
        let f = TenantFigures::of(&r, None);
        assert!((f.throughput_items_per_s - 20.0).abs() < 1e-9);
        assert_eq!(f.steps, 10);
        assert_eq!(f.windowed_cv, 0.0);
    }

    #[test]
    fn slo_is_judged_on_step_time_with_the_support_rule() {
        let r = record(
            vec![0.1, 0.2, 0.3, 0.4],
            vec![0.010, 0.010, 0.010, 0.060],
            0.4,
        );
        let slo = Slo {
            percentile: 50.0,
            target_ms: 20.0,
        };
        let f = TenantFigures::of(&r, Some(&slo)).slo.unwrap();
        assert!(f.met);
        assert_eq!(f.attainment, 0.75);
        // P50 needs 20 samples to be stated.
        assert!(!f.supported);
    }

    #[test]
    fn failed_requests_are_counted_and_are_slo_misses() {
        // 20 requests in a 1 s window: 18 answered in 5 ms, 2 failed. P90 of the answered
        // ones is 5 ms, within 10 ms, but only 18 of 20 requests (90%) met the target, so
        // the P90 holds while the P95 breaks although its answered percentile is 5 ms.
        let ends: Vec<f64> = (0..20).map(|i| (i as f64 + 0.5) / 20.0).collect();
        let mut r = record(ends, vec![0.05; 20], 1.0);
        r.samples.items = (0..20).map(|i| u64::from(i % 10 != 9)).collect();
        r.samples.failed = (0..20).map(|i| u64::from(i % 10 == 9)).collect();
        r.samples.latency_s = vec![0.005; 18];
        let slo = |percentile| Slo {
            percentile,
            target_ms: 10.0,
        };
        let p90 = TenantFigures::of(&r, Some(&slo(90.0)));
        assert_eq!((p90.steps, p90.items, p90.failed), (20, 18, 2));
        assert!((p90.throughput_items_per_s - 18.0).abs() < 1e-9);
        let p90 = p90.slo.unwrap();
        assert_eq!(p90.attainment, 0.9);
        assert!(p90.met, "{p90:?}");
        // P90 needs 100 samples to be stated; failures count towards them, and 20 are few.
        assert!(!p90.supported);
        let p95 = TenantFigures::of(&r, Some(&slo(95.0))).slo.unwrap();
        assert!((p95.observed_ms - 5.0).abs() < 0.01, "{p95:?}");
        assert!(!p95.met, "{p95:?}");
    }

    #[test]
    fn all_work_in_one_half_of_the_window_is_unstable() {
        let cv = windowed_cv(&[0.05, 0.15, 0.25, 0.35, 0.45], &[1; 5], 1.0);
        // Counts [1,1,1,1,1,0,0,0,0,0]: mean 0.5, sample sd sqrt(2.5/9).
        assert!((cv - (2.5f64 / 9.0).sqrt() / 0.5).abs() < 1e-12);
    }
}
