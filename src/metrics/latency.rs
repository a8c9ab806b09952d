//! Latency distributions with HdrHistogram (Tene): microsecond resolution, three
//! significant digits, so P99.9 of a long run costs kilobytes, not every sample.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency distribution's percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values summarized.
    pub n: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Builds a histogram of durations given in seconds.
pub fn histogram(values_s: &[f64]) -> Histogram<u64> {
    // Three significant digits: quantiles are exact to 0.1%. The histogram grows to fit
    // any recorded value, so a pathological stall is still counted.
    let mut hist = Histogram::<u64>::new(3)
        .unwrap_or_else(|_| unreachable!("3 significant digits is in range"));
    hist.auto(true);
    for v in values_s {
        let us = (v * 1e6).round().max(1.0) as u64;
        // With auto-resize on, recording only fails for values beyond u64 range.
        let _ = hist.record(us);
    }
    hist
}

impl LatencySummary {
    /// Summarizes durations given in seconds; `None` when there are none.
    pub fn of(values_s: &[f64]) -> Option<LatencySummary> {
        if values_s.is_empty() {
            return None;
        }
        let h = histogram(values_s);
        let ms = |us: u64| us as f64 / 1e3;
        Some(LatencySummary {
            n: h.len(),
            mean_ms: h.mean() / 1e3,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// Fewest samples for a stated percentile `p` (in percent) to be supported: at least ten
/// observations beyond it, n >= 10 / (1 - p/100). P99 needs 1,000 samples.
pub fn min_samples_for_percentile(p: f64) -> u64 {
    // The small slack absorbs binary rounding: 10 / (1 - 0.999) is 10000.000000000002.
    (10.0 / (1.0 - p / 100.0) - 1e-6).ceil() as u64
}

/// Share of values (seconds) at or under a target (milliseconds), from 0 to 1.
pub fn attainment(values_s: &[f64], target_ms: f64) -> f64 {
    attainment_with_misses(values_s, target_ms, 0)
}

/// Share of values (seconds) at or under a target (milliseconds) among the values and
/// `n_missed` more outcomes that missed it without a value (failed requests), from 0 to 1.
pub fn attainment_with_misses(values_s: &[f64], target_ms: f64, n_missed: u64) -> f64 {
    let n = values_s.len() as u64 + n_missed;
    if n == 0 {
        return 0.0;
    }
    let within = values_s.iter().filter(|v| **v * 1e3 <= target_ms).count();
    within as f64 / n as f64
}

/// The value at percentile `p` (in percent), in milliseconds.
pub fn percentile_ms(values_s: &[f64], p: f64) -> f64 {
    histogram(values_s).value_at_quantile(p / 100.0) as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand_ms() {
        let values: Vec<f64> = (1..=1000).map(|i| i as f64 / 1e3).collect();
        let s = LatencySummary::of(&values).unwrap();
        assert_eq!(s.n, 1000);
        // Three significant digits: each quantile is within 0.1% of the exact value.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 1e-3;
        assert!(close(s.p50_ms, 500.0), "p50 {}", s.p50_ms);
        assert!(close(s.p90_ms, 900.0), "p90 {}", s.p90_ms);
        assert!(close(s.p99_ms, 990.0), "p99 {}", s.p99_ms);
        assert!((s.max_ms - 1000.0).abs() <= 1.0, "max {}", s.max_ms);
        assert!((s.mean_ms - 500.5).abs() < 0.5);
    }

    #[test]
    fn percentile_support_rule() {
        assert_eq!(min_samples_for_percentile(99.0), 1000);
        assert_eq!(min_samples_for_percentile(50.0), 20);
        assert_eq!(min_samples_for_percentile(99.9), 10_000);
    }

    #[test]
    fn attainment_counts_values_at_or_under_target() {
        let v = [0.010, 0.020, 0.050, 0.051];
        assert_eq!(attainment(&v, 50.0), 0.75);
        // Failed outcomes are misses: 3 within out of 4 values and 2 failures.
        assert_eq!(attainment_with_misses(&v, 50.0, 2), 0.5);
        assert_eq!(attainment_with_misses(&[], 50.0, 0), 0.0);
    }
}
