//! Descriptive statistics across repetitions: mean, coefficient of variation and a
//! percentile bootstrap confidence interval (Efron & Tibshirani 1993, ch. 13).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Resamples drawn for each bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Fixed so the same results always render the same interval.
const BOOTSTRAP_SEED: u64 = 0x6770_7573_6861_7265;

/// A figure across repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    /// Lower end of the 95% bootstrap confidence interval of the mean.
    pub ci_low: f64,
    /// Upper end of the 95% bootstrap confidence interval of the mean.
    pub ci_high: f64,
    /// Coefficient of variation: sample standard deviation over mean (0 with one value).
    pub cv: f64,
    /// How many values it summarizes.
    pub n: usize,
}

impl Estimate {
    /// Summarizes values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        if values.is_empty() {
            return None;
        }
        let m = mean(values);
        let (ci_low, ci_high) = bootstrap_ci(values, 0.95);
        Some(Estimate {
            mean: m,
            ci_low,
            ci_high,
            cv: coefficient_of_variation(values),
            n: values.len(),
        })
    }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (Bessel's correction); 0 for fewer than two values.
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Standard deviation over mean; 0 when the mean is 0.
pub fn coefficient_of_variation(values: &[f64]) -> f64 {
    let m = mean(values);
    if m == 0.0 || values.len() < 2 {
        0.0
    } else {
        std_dev(values) / m.abs()
    }
}

/// Percentile bootstrap interval of the mean at `level` (0.95 for 95%). With one value
/// the interval is that value: there is nothing to resample.
pub fn bootstrap_ci(values: &[f64], level: f64) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    if n == 1 {
        return (values[0], values[0]);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (
        quantile_sorted(&means, tail),
        quantile_sorted(&means, 1.0 - tail),
    )
}

/// Percentile bootstrap interval at `level` of the relative change of the mean from
/// `base` to `new` (`mean(new) / mean(base) - 1`), each side resampled independently, as
/// criterion compares two benchmarks. With one value on both sides the interval is the
/// point change.
pub fn bootstrap_change_ci(base: &[f64], new: &[f64], level: f64) -> (f64, f64) {
    if base.is_empty() || new.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let mut resample = |values: &[f64]| {
        let n = values.len();
        (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64
    };
    let mut changes: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let b = resample(base);
            resample(new) / b - 1.0
        })
        .filter(|c| c.is_finite())
        .collect();
    if changes.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    changes.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (
        quantile_sorted(&changes, tail),
        quantile_sorted(&changes, 1.0 - tail),
    )
}

/// Linear-interpolation quantile (type 7, as R and numpy default) of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_and_cv_match_hand_computed_values() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), 5.0);
        // Sum of squares 32, n-1 = 7.
        assert!((std_dev(&v) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert!((coefficient_of_variation(&v) - (32.0f64 / 7.0).sqrt() / 5.0).abs() < 1e-12);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.25), 1.75);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_is_reproducible() {
        let v = [10.0, 11.0, 9.0, 10.5, 9.5];
        let (lo, hi) = bootstrap_ci(&v, 0.95);
        assert!(lo < 10.0 && 10.0 < hi);
        // The mean of resamples cannot leave the range of the data.
        assert!(lo >= 9.0 && hi <= 11.0);
        assert_eq!((lo, hi), bootstrap_ci(&v, 0.95));
    }

    #[test]
    fn the_change_interval_brackets_the_change_of_the_means() {
        let base = [100.0, 101.0, 99.0];
        let new = [90.0, 91.0, 89.0];
        let (lo, hi) = bootstrap_change_ci(&base, &new, 0.95);
        assert!(lo < -0.1 && -0.1 < hi, "{lo} {hi}");
        // Extremes: the smallest new mean over the largest base mean, and the reverse.
        assert!(
            lo >= 89.0 / 101.0 - 1.0 && hi <= 91.0 / 99.0 - 1.0,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_change_ci(&[2.0], &[3.0], 0.95), (0.5, 0.5));
    }

    #[test]
    fn identical_values_give_a_zero_width_interval() {
        let e = Estimate::of(&[3.0, 3.0, 3.0]).unwrap();
        assert_eq!(
            (e.mean, e.ci_low, e.ci_high, e.cv, e.n),
            (3.0, 3.0, 3.0, 0.0, 3)
        );
    }
}
