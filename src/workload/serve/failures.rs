//! What a `serve.<model>` tenant does with failed requests.
//!
//! The rule, as documented in README ("Serving tenants"):
//! - Every request the generator reports is one step. A 2xx answer is one item with its
//!   latency from the intended send time. Anything else (another HTTP status such as 503
//!   from a full queue or 500 from a failing model, a timeout, a broken or refused
//!   connection, or a request dropped because the generator was more than 1 s behind) is
//!   a *failed* request: no item, no latency, counted in the step's `failed`. Reports show
//!   the failed share per tenant, and failed requests count as misses against the SLO.
//! - When failures stop being a measurement and become a broken tenant, the step fails:
//!   more than [`MAX_FAILED`] of the last [`WINDOW`] requests failed. The run is then
//!   FAILED with the counts by kind, rather than reporting a latency distribution of the
//!   few requests that got through.
//! - Warm-up proves the path: `prepare` fails when no warm-up request was answered 2xx.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::load::RequestOutcome;

/// How many of the most recent requests the failure rule looks at.
pub const WINDOW: usize = 100;
/// More failures than this among the last [`WINDOW`] requests fail the tenant.
pub const MAX_FAILED: usize = WINDOW / 2;

/// The most recent outcomes, for the failure rule.
#[derive(Debug, Default)]
pub struct RecentOutcomes {
    recent: VecDeque<RequestOutcome>,
    n_failed: usize,
}

impl RecentOutcomes {
    /// Records one outcome; `Err` describes the window once more than [`MAX_FAILED`] of the
    /// last [`WINDOW`] requests failed.
    pub fn record(&mut self, outcome: RequestOutcome) -> Result<(), OutcomeCounts> {
        if self.recent.len() == WINDOW {
            if let Some(oldest) = self.recent.pop_front() {
                self.n_failed -= usize::from(!oldest.is_ok());
            }
        }
        self.recent.push_back(outcome);
        self.n_failed += usize::from(!outcome.is_ok());
        if self.n_failed > MAX_FAILED {
            Err(OutcomeCounts::of(self.recent.iter().copied()))
        } else {
            Ok(())
        }
    }
}

/// Requests counted by how they ended, for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    n_ok: u64,
    by_kind: BTreeMap<String, u64>,
}

impl OutcomeCounts {
    pub fn of(outcomes: impl IntoIterator<Item = RequestOutcome>) -> Self {
        let mut counts = Self::default();
        for outcome in outcomes {
            counts.add(outcome);
        }
        counts
    }

    pub fn add(&mut self, outcome: RequestOutcome) {
        let kind = match outcome {
            RequestOutcome::Ok => {
                self.n_ok += 1;
                return;
            }
            RequestOutcome::Status(code) => format!("HTTP {code}"),
            RequestOutcome::Connect => "connection refused".to_owned(),
            RequestOutcome::Timeout => "timed out".to_owned(),
            RequestOutcome::Io => "connection broken".to_owned(),
            RequestOutcome::Dropped => "dropped, generator over 1 s behind".to_owned(),
        };
        *self.by_kind.entry(kind).or_default() += 1;
    }

    pub fn n_ok(&self) -> u64 {
        self.n_ok
    }

    pub fn n_failed(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

impl fmt::Display for OutcomeCounts {
    /// `61 of 100 requests failed (58 dropped, generator over 1 s behind; 3 HTTP 503)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        write!(
            f,
            "{} of {} requests failed ({})",
            self.n_failed(),
            self.n_failed() + self.n_ok,
            kinds.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_failing_is_tolerated_and_one_more_is_not() {
        let mut recent = RecentOutcomes::default();
        for i in 0..WINDOW {
            let outcome = if i % 2 == 0 {
                RequestOutcome::Status(503)
            } else {
                RequestOutcome::Ok
            };
            recent.record(outcome).unwrap();
        }
        // The window holds 50 failures. A failure that pushes a failure out keeps 50; the
        // next one pushes a success out: 51.
        recent.record(RequestOutcome::Timeout).unwrap();
        let counts = recent.record(RequestOutcome::Timeout).unwrap_err();
        assert_eq!(
            counts.to_string(),
            "51 of 100 requests failed (49 HTTP 503; 2 timed out)"
        );
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut recent = RecentOutcomes::default();
        for _ in 0..MAX_FAILED {
            recent.record(RequestOutcome::Connect).unwrap();
        }
        for _ in 0..WINDOW {
            recent.record(RequestOutcome::Ok).unwrap();
        }
        // The early failures are gone: another 50 are tolerated again.
        for _ in 0..MAX_FAILED {
            recent.record(RequestOutcome::Io).unwrap();
        }
        assert!(recent.record(RequestOutcome::Io).is_err());
    }

    #[test]
    fn counts_read_as_a_sentence() {
        let counts = OutcomeCounts::of([
            RequestOutcome::Ok,
            RequestOutcome::Status(500),
            RequestOutcome::Status(500),
            RequestOutcome::Connect,
        ]);
        assert_eq!((counts.n_ok(), counts.n_failed()), (1, 3));
        assert_eq!(
            counts.to_string(),
            "3 of 4 requests failed (2 HTTP 500; 1 connection refused)"
        );
    }
}
