//! The allowed range of every number a user can give gpushare: a scenario's run and mode
//! settings, every workload parameter (the registry's [`ParamInfo`](crate::workload::ParamInfo)
//! kinds name a limit from here) and the command line's durations and counts.
//!
//! Validation states these ranges in its messages, so a value that passes `gpushare
//! validate` is one the runner and the workers can use: every duration below converts to
//! a [`Duration`] and can be added to an [`Instant`](std::time::Instant) of this
//! century. Ranges are generous (a day for a window, an hour for a step): they exist to
//! reject what cannot work, not to judge what is sensible.
//!
//! **Invariant:** pure data and checks; no I/O.

use std::fmt;
use std::time::Duration;

/// An integer field's allowed range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntLimit {
    pub min: i64,
    pub max: i64,
    /// The unit, for messages ("MiB", "percent"); empty for a plain count.
    pub unit: &'static str,
}

/// A number field's allowed range; NaN and infinities are never allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatLimit {
    pub min: f64,
    /// Whether `min` itself is excluded (a window must be longer than 0 s).
    pub min_exclusive: bool,
    pub max: f64,
    /// The unit, plural, for messages ("seconds").
    pub unit: &'static str,
}

impl IntLimit {
    pub const fn new(min: i64, max: i64, unit: &'static str) -> IntLimit {
        IntLimit { min, max, unit }
    }

    pub fn contains(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// `Ok(value)`, or the sentence validation reports: "must be an integer from 1 to
    /// 1000, got -3".
    pub fn check(&self, value: i64) -> Result<i64, String> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(format!("must be {self}, got {value}"))
        }
    }
}

impl fmt::Display for IntLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from {} to {}", self.min, self.max)?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

impl FloatLimit {
    /// `min..=max`.
    pub const fn closed(min: f64, max: f64, unit: &'static str) -> FloatLimit {
        FloatLimit {
            min,
            min_exclusive: false,
            max,
            unit,
        }
    }

    /// Above `min`, at most `max`.
    pub const fn above(min: f64, max: f64, unit: &'static str) -> FloatLimit {
        FloatLimit {
            min,
            min_exclusive: true,
            max,
            unit,
        }
    }

    pub fn contains(&self, value: f64) -> bool {
        let above_min = if self.min_exclusive {
            value > self.min
        } else {
            value >= self.min
        };
        value.is_finite() && above_min && value <= self.max
    }

    /// `Ok(value)`, or the sentence validation reports: "must be a number of seconds
    /// above 0 and at most 86400, got 1e308".
    pub fn check(&self, value: f64) -> Result<f64, String> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(format!("must be {self}, got {}", number(value)))
        }
    }
}

impl fmt::Display for FloatLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number of {} ", self.unit)?;
        if self.min_exclusive {
            write!(
                f,
                "above {} and at most {}",
                number(self.min),
                number(self.max)
            )
        } else {
            write!(f, "from {} to {}", number(self.min), number(self.max))
        }
    }
}

/// A number as messages write it: `1e308` rather than 309 digits, `2.5` as written.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-4..1e15).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// Seconds as a [`Duration`], or why not: a value outside every limit here (negative,
/// NaN, too large to represent). Validated values always convert.
pub fn duration_from_secs(seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{} s is not a duration", number(seconds)))
}

/// `now + after`, or the farthest instant that can be represented when the sum overflows
/// (a deadline that will not come is the meaning of a very long wait).
pub fn deadline<I>(now: I, after: Duration) -> I
where
    I: Copy + CheckedAdd,
{
    let mut step = after;
    loop {
        if let Some(at) = now.checked_add_duration(step) {
            return at;
        }
        step /= 2;
    }
}

/// Instants that can add a duration without panicking.
pub trait CheckedAdd: Sized {
    fn checked_add_duration(&self, after: Duration) -> Option<Self>;
}

impl CheckedAdd for std::time::Instant {
    fn checked_add_duration(&self, after: Duration) -> Option<Self> {
        self.checked_add(after)
    }
}

impl CheckedAdd for tokio::time::Instant {
    fn checked_add_duration(&self, after: Duration) -> Option<Self> {
        self.checked_add(after)
    }
}

/// A day: the longest measured window, warm-up or timeout.
const DAY_S: f64 = 86_400.0;
/// An hour in milliseconds: the longest step, think time or service time.
const HOUR_MS: f64 = 3_600_000.0;

/// `[run]` settings.
pub mod run {
    use super::{FloatLimit, IntLimit, DAY_S};

    pub const WARMUP_S: FloatLimit = FloatLimit::closed(0.0, DAY_S, "seconds");
    pub const DURATION_S: FloatLimit = FloatLimit::above(0.0, DAY_S, "seconds");
    /// Also at most `duration_s`, which validation checks beside this.
    pub const MIN_DURATION_S: FloatLimit = FloatLimit::closed(0.0, DAY_S, "seconds");
    pub const READY_TIMEOUT_S: FloatLimit = FloatLimit::above(0.0, DAY_S, "seconds");
    pub const STOP_TIMEOUT_S: FloatLimit = FloatLimit::above(0.0, DAY_S, "seconds");
    pub const REPETITIONS: IntLimit = IntLimit::new(1, 1000, "");
    pub const MIN_SAMPLES: IntLimit = IntLimit::new(1, 1_000_000_000_000, "");
    pub const SEED: IntLimit = IntLimit::new(0, i64::MAX, "");

    /// Every number of `[run]`, by field name: what the property tests feed extremes.
    pub const FLOAT_FIELDS: &[(&str, FloatLimit)] = &[
        ("warmup_s", WARMUP_S),
        ("duration_s", DURATION_S),
        ("min_duration_s", MIN_DURATION_S),
        ("ready_timeout_s", READY_TIMEOUT_S),
        ("stop_timeout_s", STOP_TIMEOUT_S),
    ];
    pub const INT_FIELDS: &[(&str, IntLimit)] = &[
        ("repetitions", REPETITIONS),
        ("min_samples", MIN_SAMPLES),
        ("seed", SEED),
    ];
}

/// Tenants and sharing modes.
pub mod tenant {
    use super::{FloatLimit, IntLimit, HOUR_MS};

    /// Each replica is a process with its own GPU context.
    pub const REPLICAS: IntLimit = IntLimit::new(1, 64, "");
    pub const MPS_ACTIVE_THREAD_PERCENTAGE: IntLimit = IntLimit::new(1, 100, "percent");
    /// 16 TiB: far above any GPU's memory, low enough for any MiB count to fit everywhere.
    pub const MPS_PINNED_MEMORY_LIMIT_MIB: IntLimit = IntLimit::new(1, 16 * 1024 * 1024, "MiB");
    pub const SLO_TARGET_MS: FloatLimit = FloatLimit::above(0.0, HOUR_MS, "milliseconds");
    /// Strictly between 0 and 100; validation checks the upper end beside this.
    pub const SLO_PERCENTILE: FloatLimit = FloatLimit::above(0.0, 100.0, "percent");
}

/// Workload parameters, named by the registry's entries.
pub mod workload {
    use super::{FloatLimit, IntLimit, HOUR_MS};

    /// A step, think time, service time or set-up that may be zero.
    pub const MILLIS: FloatLimit = FloatLimit::closed(0.0, HOUR_MS, "milliseconds");
    /// The same, above zero.
    pub const MILLIS_POSITIVE: FloatLimit = FloatLimit::above(0.0, HOUR_MS, "milliseconds");
    /// The latency probe's launch interval: above zero, at most an hour.
    pub const MICROS_POSITIVE: FloatLimit = FloatLimit::above(0.0, HOUR_MS * 1e3, "microseconds");
    /// A probe buffer: at most 1 TB, more than any GPU has.
    pub const BUFFER_MB: FloatLimit = FloatLimit::above(0.0, 1e6, "MB");
    pub const ITEMS_PER_STEP: IntLimit = IntLimit::new(1, 1_000_000_000, "");
    pub const STEP_COUNT: IntLimit = IntLimit::new(0, 1_000_000_000_000, "");
    pub const CELLS_PER_BURST: IntLimit = IntLimit::new(1, 1_000_000, "");
    pub const BATCH_SIZE: IntLimit = IntLimit::new(1, 65_536, "");
    pub const SEQ_LEN: IntLimit = IntLimit::new(1, 65_536, "tokens");
    pub const IMAGE_SIZE: IntLimit = IntLimit::new(1, 8192, "pixels");
    /// A serving tenant's request rate: its generator (`gpushare load --stream`) writes a
    /// line per request, dropped ones included, so the rate is bounded like that stream's.
    pub const RATE_PER_S: FloatLimit = FloatLimit::above(0.0, 100_000.0, "requests per second");
    /// Generator connections: each is a socket and a task, and more than this many
    /// requests in flight is no longer a model of one service's clients.
    pub const CONNECTIONS: IntLimit = IntLimit::new(1, 4096, "");
    pub const MAX_BATCH_SIZE: IntLimit = IntLimit::new(1, 65_536, "");
    pub const QUEUE_CAPACITY: IntLimit = IntLimit::new(1, 1_000_000, "");
}

/// The command line's numbers.
pub mod cli {
    use super::{run, FloatLimit, IntLimit};

    /// `run --duration`: the same range as `run.duration_s`.
    pub const DURATION_S: FloatLimit = run::DURATION_S;
    /// `run --repetitions`: the same range as `run.repetitions`.
    pub const REPETITIONS: IntLimit = run::REPETITIONS;
    /// `run --monitor-interval-ms`: 0 turns the monitor off; at most a minute, so the
    /// sampler's tick grid never overflows.
    pub const MONITOR_INTERVAL_MS: IntLimit = IntLimit::new(0, 60_000, "milliseconds");
    /// `run --monitor-slow-interval-ms`: at most ten minutes.
    pub const MONITOR_SLOW_INTERVAL_MS: IntLimit = IntLimit::new(1, 600_000, "milliseconds");
    /// `run --flush-interval-ms` (hidden): how often workers send samples.
    pub const FLUSH_INTERVAL_MS: IntLimit = IntLimit::new(1, 10_000, "milliseconds");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_state_the_range_and_the_value() {
        assert_eq!(
            run::DURATION_S.check(1e308).unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got 1e308"
        );
        assert_eq!(
            run::WARMUP_S.check(-1.0).unwrap_err(),
            "must be a number of seconds from 0 to 86400, got -1"
        );
        assert_eq!(
            run::DURATION_S.check(f64::NAN).unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got NaN"
        );
        assert_eq!(
            run::REPETITIONS.check(-3).unwrap_err(),
            "must be an integer from 1 to 1000, got -3"
        );
        assert_eq!(
            tenant::MPS_PINNED_MEMORY_LIMIT_MIB.check(0).unwrap_err(),
            "must be an integer from 1 to 16777216 MiB, got 0"
        );
        assert_eq!(run::DURATION_S.check(2.5), Ok(2.5));
        assert!(!run::DURATION_S.contains(0.0));
        assert!(!run::DURATION_S.contains(f64::INFINITY));
    }

    #[test]
    fn a_serving_tenant_rate_has_the_stream_generator_bound() {
        assert_eq!(workload::RATE_PER_S.max, crate::load::MAX_STREAM_RATE_PER_S);
    }

    #[test]
    fn numbers_read_short() {
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(1e12), "1000000000000");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-1e-9), "-1e-9");
    }

    #[test]
    fn every_limit_of_seconds_converts_and_adds_to_now() {
        for (_, limit) in run::FLOAT_FIELDS {
            let longest = duration_from_secs(limit.max).unwrap();
            let _ = deadline(std::time::Instant::now(), longest);
        }
        assert_eq!(
            duration_from_secs(1e308).unwrap_err(),
            "1e308 s is not a duration"
        );
        assert_eq!(
            duration_from_secs(-1.0).unwrap_err(),
            "-1 s is not a duration"
        );
    }

    #[test]
    fn a_deadline_past_the_representable_end_saturates_instead_of_panicking() {
        let now = std::time::Instant::now();
        let far = deadline(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(86_400 * 365));
    }
}
