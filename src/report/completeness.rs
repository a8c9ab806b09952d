//! Whether a study holds every run its plan has, and if not, why: interrupted, or a
//! runner that never recorded its end (killed, crashed, or still running). Every view
//! states it, so a partial study is never read as a finished one.

use crate::results::schema::RunStatus;
use crate::results::Study;

/// Why fewer runs were recorded than planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomplete {
    /// SIGINT or SIGTERM stopped the study; it wrote what it had measured.
    Interrupted,
    /// The runner recorded no end: killed, crashed, or still running.
    Unfinished,
    /// The runner ended without an interruption but before the last run.
    StoppedEarly,
}

/// Runs planned and recorded, and why they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completeness {
    pub planned: usize,
    /// Runs that ran to their end (completed or failed on their own); a run cut short by
    /// a signal is not counted.
    pub recorded: usize,
    /// `None` when every planned run is recorded.
    pub incomplete: Option<Incomplete>,
}

impl Completeness {
    pub fn of(study: &Study) -> Completeness {
        let planned = study.plan.runs.len();
        let recorded = study
            .runs
            .iter()
            .filter(|r| r.status != RunStatus::Interrupted)
            .count();
        let incomplete = if recorded >= planned {
            None
        } else if study.interrupted {
            Some(Incomplete::Interrupted)
        } else if study.finished_at.is_none() {
            Some(Incomplete::Unfinished)
        } else {
            Some(Incomplete::StoppedEarly)
        };
        Completeness {
            planned,
            recorded,
            incomplete,
        }
    }

    /// The sentence every view prints for an incomplete study.
    pub fn sentence(&self) -> Option<String> {
        let why = match self.incomplete? {
            Incomplete::Interrupted => "the study was interrupted (SIGINT or SIGTERM)",
            Incomplete::Unfinished => {
                "the runner recorded no end: it was killed or crashed, or is still running"
            }
            Incomplete::StoppedEarly => "the runner stopped before the last run",
        };
        Some(format!(
            "INCOMPLETE: {} of {} planned runs recorded; {why}",
            self.recorded, self.planned
        ))
    }
}
