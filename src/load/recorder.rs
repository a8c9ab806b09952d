//! Per-connection counters and histograms, merged once at the end of a run.
//!
//! Each connection task owns one [`Recorder`], so recording is plain arithmetic with no
//! sharing. Latencies and send lags are kept in microseconds in HdrHistograms (1 µs to
//! 1 h, 3 significant digits: quantiles within 0.1%). Must not do I/O.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::client::Outcome;

const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Failed requests, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Requests for which no connection could be opened.
    pub connect: u64,
    /// Requests not answered within `--timeout` of their send.
    pub timeout: u64,
    /// Requests whose connection broke while they were in flight.
    pub io: u64,
    /// Non-2xx responses, by HTTP status code.
    pub status: BTreeMap<u16, u64>,
}

impl ErrorCounts {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.io + self.status.values().sum::<u64>()
    }

    fn merge(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.io += other.io;
        for (code, count) in &other.status {
            *self.status.entry(*code).or_default() += count;
        }
    }
}

/// What one connection saw.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    /// Latency of 2xx responses, from intended send time to the last body byte, in µs.
    pub latency_us: Histogram<u64>,
    /// Actual minus intended send time, in µs (open loop only).
    pub send_lag_us: Histogram<u64>,
    /// Time the dispatcher issued a request minus its intended time, in µs (open loop
    /// only): the generator's own timing error, before any wait for a free connection.
    pub dispatch_lag_us: Histogram<u64>,
    pub n_sent: u64,
    pub n_ok: u64,
    pub n_late: u64,
    /// Requests not sent (every kind; see the generator's rule).
    pub n_dropped: u64,
    /// Of those, the ones the dispatcher itself reached more than `drop_after` late.
    pub n_behind_schedule: u64,
    /// 2xx responses within the SLO target.
    pub n_within_slo: u64,
    pub errors: ErrorCounts,
    pub last_send: Option<Instant>,
    pub last_done: Option<Instant>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            send_lag_us: new_histogram(),
            dispatch_lag_us: new_histogram(),
            n_sent: 0,
            n_ok: 0,
            n_late: 0,
            n_dropped: 0,
            n_behind_schedule: 0,
            n_within_slo: 0,
            errors: ErrorCounts::default(),
            last_send: None,
            last_done: None,
        }
    }

    /// The dispatcher issued a request `lag` after its intended time.
    pub fn record_dispatch(&mut self, lag: Duration) {
        self.dispatch_lag_us.saturating_record(micros(lag));
    }

    /// A request too far behind schedule to be sent.
    pub fn record_dropped(&mut self) {
        self.n_dropped += 1;
    }

    /// `n` requests the dispatcher reached (or skipped) too far behind schedule to send.
    pub fn record_behind_schedule(&mut self, n: u64) {
        self.n_dropped = self.n_dropped.saturating_add(n);
        self.n_behind_schedule = self.n_behind_schedule.saturating_add(n);
    }

    /// A request about to be sent `lag` after its intended time (zero in closed loop).
    pub fn record_send(&mut self, now: Instant, lag: Option<Duration>, late_after: Duration) {
        self.n_sent += 1;
        self.last_send = Some(now);
        if let Some(lag) = lag {
            self.send_lag_us.saturating_record(micros(lag));
            if lag > late_after {
                self.n_late += 1;
            }
        }
    }

    /// How a sent request ended, `latency` after its intended send time.
    pub fn record_outcome(
        &mut self,
        outcome: Outcome,
        latency: Duration,
        done: Instant,
        slo: Option<Duration>,
    ) {
        self.last_done = Some(done);
        match outcome {
            Outcome::Ok => {
                self.n_ok += 1;
                self.latency_us.saturating_record(micros(latency));
                if slo.is_some_and(|target| latency <= target) {
                    self.n_within_slo += 1;
                }
            }
            Outcome::Status(code) => *self.errors.status.entry(code).or_default() += 1,
            Outcome::Connect => self.errors.connect += 1,
            Outcome::Timeout => self.errors.timeout += 1,
            Outcome::Io => self.errors.io += 1,
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.send_lag_us.add(&other.send_lag_us);
        let _ = self.dispatch_lag_us.add(&other.dispatch_lag_us);
        self.n_sent += other.n_sent;
        self.n_ok += other.n_ok;
        self.n_late += other.n_late;
        self.n_dropped += other.n_dropped;
        self.n_behind_schedule += other.n_behind_schedule;
        self.n_within_slo += other.n_within_slo;
        self.errors.merge(&other.errors);
        self.last_send = self.last_send.max(other.last_send);
        self.last_done = self.last_done.max(other.last_done);
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
        .expect("constant bounds are valid: low 1 >= 1, high >= 2 * low, 3 significant digits")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_MAX_US)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_land_in_their_counters_and_merge() {
        let now = Instant::now();
        let slo = Some(Duration::from_millis(10));
        let mut a = Recorder::new();
        a.record_send(
            now,
            Some(Duration::from_micros(10)),
            Duration::from_millis(1),
        );
        a.record_outcome(Outcome::Ok, Duration::from_millis(5), now, slo);
        a.record_send(
            now,
            Some(Duration::from_millis(3)),
            Duration::from_millis(1),
        );
        a.record_outcome(Outcome::Ok, Duration::from_millis(50), now, slo);
        let mut b = Recorder::new();
        b.record_send(now, None, Duration::from_millis(1));
        b.record_outcome(Outcome::Status(503), Duration::from_millis(1), now, slo);
        b.record_dropped();
        b.record_behind_schedule(5);
        a.merge(&b);
        assert_eq!((a.n_sent, a.n_ok, a.n_late, a.n_dropped), (3, 2, 1, 6));
        assert_eq!(a.n_behind_schedule, 5);
        assert_eq!(a.n_within_slo, 1);
        assert_eq!(a.errors.status.get(&503), Some(&1));
        assert_eq!(a.errors.total(), 1);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.send_lag_us.len(), 2);
    }
}
