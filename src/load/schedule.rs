//! Intended send times of an open-loop run.
//!
//! The schedule is fixed before the run and never looks at responses: that independence
//! is what makes the load open-loop. Constant arrivals are `i / rate`; Poisson arrivals
//! have exponential gaps drawn by inverse transform sampling, `-ln(1 - U) / rate` with `U`
//! uniform on [0, 1) from a ChaCha8 generator seeded by `--seed`, so a seed always gives
//! the same schedule on every platform.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly, `1 / rate` apart, the first at time 0.
    Constant,
    /// A Poisson process: independent exponential gaps with mean `1 / rate`.
    Poisson,
}

/// An endless iterator of intended send times, as offsets from the start of the run.
#[derive(Debug, Clone)]
pub struct Schedule {
    rate_per_s: f64,
    arrivals: Arrivals,
    rng: ChaCha8Rng,
    n_emitted: u64,
    poisson_offset_s: f64,
}

impl Schedule {
    /// A schedule of `rate_per_s` arrivals per second; `rate_per_s` must be positive and
    /// finite (the config checks it).
    pub fn new(rate_per_s: f64, arrivals: Arrivals, seed: u64) -> Self {
        Self {
            rate_per_s,
            arrivals,
            rng: ChaCha8Rng::seed_from_u64(seed),
            n_emitted: 0,
            poisson_offset_s: 0.0,
        }
    }

    /// The offsets that fall before `duration`.
    pub fn within(self, duration: Duration) -> impl Iterator<Item = Duration> {
        self.take_while(move |offset| *offset < duration)
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let offset_s = match self.arrivals {
            // Computed from the index, not accumulated, so rounding never drifts.
            Arrivals::Constant => self.n_emitted as f64 / self.rate_per_s,
            Arrivals::Poisson => {
                let uniform: f64 = self.rng.random();
                self.poisson_offset_s += -(1.0 - uniform).ln() / self.rate_per_s;
                self.poisson_offset_s
            }
        };
        self.n_emitted += 1;
        Duration::try_from_secs_f64(offset_s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps_s(offsets: &[Duration]) -> Vec<f64> {
        offsets
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).as_secs_f64())
            .collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let offsets: Vec<Duration> = Schedule::new(1000.0, Arrivals::Constant, 0)
            .within(Duration::from_secs(1))
            .collect();
        assert_eq!(offsets.len(), 1000);
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[999], Duration::from_millis(999));
        for gap in gaps_s(&offsets) {
            assert!((gap - 0.001).abs() < 1e-9, "gap {gap}");
        }
    }

    #[test]
    fn poisson_gaps_have_exponential_statistics() {
        let rate = 2000.0;
        let offsets: Vec<Duration> = Schedule::new(rate, Arrivals::Poisson, 42)
            .take(100_000)
            .collect();
        let gaps = gaps_s(&offsets);
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let variance = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let cv = variance.sqrt() / mean;
        // Exponential: mean 1/rate and coefficient of variation 1. With 1e5 samples the
        // standard error of the mean is 0.3%, so 2% bounds fail only on a real bug.
        assert!((mean * rate - 1.0).abs() < 0.02, "mean gap {mean}");
        assert!((cv - 1.0).abs() < 0.02, "coefficient of variation {cv}");
        // P(gap > mean) = e^-1 for an exponential distribution.
        let above = gaps.iter().filter(|&&g| g > 1.0 / rate).count() as f64 / n;
        assert!(
            (above - (-1.0f64).exp()).abs() < 0.01,
            "fraction above mean {above}"
        );
    }

    #[test]
    fn poisson_count_matches_rate_times_duration() {
        let count = Schedule::new(500.0, Arrivals::Poisson, 7)
            .within(Duration::from_secs(20))
            .count() as f64;
        // Poisson(10_000): standard deviation 100, so 5% is 5 sigma.
        assert!((count - 10_000.0).abs() < 500.0, "count {count}");
    }

    #[test]
    fn a_seed_fixes_the_schedule() {
        let a: Vec<Duration> = Schedule::new(100.0, Arrivals::Poisson, 3)
            .take(50)
            .collect();
        let b: Vec<Duration> = Schedule::new(100.0, Arrivals::Poisson, 3)
            .take(50)
            .collect();
        let c: Vec<Duration> = Schedule::new(100.0, Arrivals::Poisson, 4)
            .take(50)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|pair| pair[0] <= pair[1]));
    }
}
