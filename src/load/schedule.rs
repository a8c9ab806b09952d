//! Intended send times of an open-loop run.
//!
//! The schedule is fixed before the run and never looks at responses: that independence
//! is what makes the load open-loop. Constant arrivals are `i / rate`; Poisson arrivals
//! have exponential gaps drawn by inverse transform sampling, `-ln(1 - U) / rate` with `U`
//! uniform on [0, 1) from a ChaCha8 generator seeded by `--seed`, so a seed always gives
//! the same schedule on every platform.
//!
//! A generator that has fallen behind skips ahead ([`Schedule::skip_until`]) in constant
//! time whatever the rate, counting the arrivals it skipped instead of producing each one:
//! at 1e9 requests per second there is no time to look at every arrival it cannot send.
//! Constant arrivals skip by index. Poisson arrivals skip by memorylessness: the count in
//! the skipped span is drawn from Poisson(rate x span) (exactly, by summing exponential
//! gaps, up to a mean of 1000; above it from the normal approximation N(mean, mean), whose
//! error in the count is below 1% of its standard deviation there), and the next arrival
//! is an exponential gap after the span's end.

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

/// Poisson skips with a mean count up to this draw each gap; above it, the normal
/// approximation.
const EXACT_POISSON_SKIP_MAX_MEAN: f64 = 1000.0;

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

    /// How many arrivals the schedule has produced or skipped: the index of the next one.
    pub fn n_emitted(&self) -> u64 {
        self.n_emitted
    }

    /// Skips every arrival before `offset` that has not been produced yet, in constant time
    /// (see the module docs); returns how many it skipped.
    pub fn skip_until(&mut self, offset: Duration) -> u64 {
        let until_s = offset.as_secs_f64();
        let skipped = match self.arrivals {
            Arrivals::Constant => {
                // Arrival i is at i / rate; the first one not skipped is ceil(until * rate).
                // The float-to-int cast saturates, so no rate or offset can overflow it.
                let first_kept = (until_s * self.rate_per_s).ceil() as u64;
                first_kept.saturating_sub(self.n_emitted)
            }
            Arrivals::Poisson => {
                let span_s = until_s - self.poisson_offset_s;
                if span_s <= 0.0 {
                    return 0;
                }
                let skipped = self.poisson_count(span_s * self.rate_per_s);
                self.poisson_offset_s = until_s;
                skipped
            }
        };
        self.n_emitted = self.n_emitted.saturating_add(skipped);
        skipped
    }

    /// A draw from Poisson(`mean`).
    fn poisson_count(&mut self, mean: f64) -> u64 {
        if mean <= EXACT_POISSON_SKIP_MAX_MEAN {
            // Unit-rate exponential gaps until their sum passes the mean.
            let mut count = 0;
            let mut sum = 0.0;
            loop {
                let uniform: f64 = self.rng.random();
                sum += -(1.0 - uniform).ln();
                if sum > mean {
                    return count;
                }
                count += 1;
            }
        }
        // Box-Muller: one standard normal from two uniforms.
        let u1: f64 = self.rng.random();
        let u2: f64 = self.rng.random();
        let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (mean + mean.sqrt() * normal).round().max(0.0) as u64
    }
}

/// One generator thread's part of a schedule: thread k of n takes arrivals k, k + n,
/// k + 2n, ... of the whole schedule, up to `duration`.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleShare {
    schedule: Schedule,
    duration: Duration,
    thread_idx: u64,
    n_threads: u64,
}

impl ScheduleShare {
    /// Thread `thread_idx` of `n_threads`'s share of `schedule` before `duration`.
    pub fn new(
        schedule: Schedule,
        duration: Duration,
        thread_idx: usize,
        n_threads: usize,
    ) -> Self {
        let n_threads = n_threads.max(1) as u64;
        Self {
            schedule,
            duration,
            thread_idx: (thread_idx as u64).min(n_threads - 1),
            n_threads,
        }
    }

    /// Skips this share's arrivals before `offset` (and never past the end); returns how
    /// many of them it skipped.
    pub fn skip_until(&mut self, offset: Duration) -> u64 {
        let before = self.schedule.n_emitted();
        self.schedule.skip_until(offset.min(self.duration));
        let after = self.schedule.n_emitted();
        self.ours_below(after) - self.ours_below(before)
    }

    /// How many indices below `index` belong to this share.
    fn ours_below(&self, index: u64) -> u64 {
        index.saturating_add(self.n_threads - 1 - self.thread_idx) / self.n_threads
    }
}

impl Iterator for ScheduleShare {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let index = self.schedule.n_emitted();
            let offset = self.schedule.next()?;
            if offset >= self.duration {
                return None;
            }
            if index % self.n_threads == self.thread_idx {
                return Some(offset);
            }
        }
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
        self.n_emitted = self.n_emitted.saturating_add(1);
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
    fn constant_skips_land_on_the_first_arrival_not_skipped() {
        let mut schedule = Schedule::new(1000.0, Arrivals::Constant, 0);
        assert_eq!(schedule.next(), Some(Duration::ZERO));
        // Arrivals 1..=499 are before 499.5 ms; the next one is at 500 ms.
        assert_eq!(schedule.skip_until(Duration::from_micros(499_500)), 499);
        assert_eq!(schedule.next(), Some(Duration::from_millis(500)));
        assert_eq!(schedule.skip_until(Duration::from_millis(100)), 0);
        assert_eq!(schedule.n_emitted(), 501);
        // A billion arrivals per second skip a whole second in one step.
        let mut fast = Schedule::new(1e9, Arrivals::Constant, 0);
        assert_eq!(fast.skip_until(Duration::from_secs(1)), 1_000_000_000);
        assert_eq!(fast.next(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn poisson_skips_count_like_the_arrivals_they_replace() {
        for (rate, span_s) in [(100.0, 2.0), (2e6, 1.0)] {
            let mut counts = Vec::new();
            for seed in 0..200 {
                let mut schedule = Schedule::new(rate, Arrivals::Poisson, seed);
                counts.push(schedule.skip_until(Duration::from_secs_f64(span_s)) as f64);
                let next = schedule.next().unwrap();
                assert!(next.as_secs_f64() >= span_s, "{next:?}");
            }
            let n = counts.len() as f64;
            let mean = counts.iter().sum::<f64>() / n;
            let variance = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let expected = rate * span_s;
            // Poisson: mean = variance = rate x span. The mean of 200 draws has a standard
            // error of sqrt(expected / 200); 5 of them bound it. The variance of 200 draws
            // is within 40% of its value far beyond 5 sigma.
            assert!(
                (mean - expected).abs() < 5.0 * (expected / n).sqrt(),
                "rate {rate}: mean {mean}, expected {expected}"
            );
            assert!(
                (variance / expected - 1.0).abs() < 0.4,
                "rate {rate}: variance {variance}, expected {expected}"
            );
        }
    }

    #[test]
    fn shares_split_arrivals_and_skips_between_threads() {
        let share = |idx| {
            ScheduleShare::new(
                Schedule::new(1000.0, Arrivals::Constant, 0),
                Duration::from_millis(10),
                idx,
                3,
            )
        };
        let ms = |share: ScheduleShare| -> Vec<u128> { share.map(|d| d.as_millis()).collect() };
        assert_eq!(ms(share(0)), vec![0, 3, 6, 9]);
        assert_eq!(ms(share(1)), vec![1, 4, 7]);
        assert_eq!(ms(share(2)), vec![2, 5, 8]);
        // Skipping to 5 ms skips 0..=4: two of thread 0's and thread 1's, one of thread 2's.
        let skipped: Vec<u64> = (0..3)
            .map(|idx| share(idx).skip_until(Duration::from_millis(5)))
            .collect();
        assert_eq!(skipped, vec![2, 2, 1]);
        let mut first = share(0);
        assert_eq!(first.skip_until(Duration::from_millis(5)), 2);
        assert_eq!(ms(first), vec![6, 9]);
        // A skip never counts arrivals past the end.
        assert_eq!(share(1).skip_until(Duration::from_secs(60)), 3);
    }

    #[test]
    fn extreme_rates_neither_overflow_nor_panic() {
        let mut schedule = Schedule::new(f64::MAX, Arrivals::Constant, 0);
        assert_eq!(schedule.skip_until(Duration::from_secs(1)), u64::MAX);
        assert_eq!(schedule.skip_until(Duration::from_secs(2)), 0);
        let _ = schedule.next();
        let mut poisson = Schedule::new(f64::MAX, Arrivals::Poisson, 0);
        let _ = poisson.skip_until(Duration::from_secs(1));
        let _ = poisson.next();
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
