//! Progress on stderr: a bar on a terminal, one line per run otherwise (CI logs); and
//! the [`Observer`] that follows the study live, when there is one.
//!
//! Progress never takes a study down: a closed or broken stderr (`gpushare run 2>&1 |
//! head -1`) loses the lines, not the runs. Nothing here panics on a failed write.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::observer::{Observer, Unobserved};
use crate::results::schema::{RunRecord, RunStatus};

/// Progress of a study; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    n_runs: usize,
    observer: Arc<dyn Observer>,
}

impl Progress {
    pub fn new(n_runs: usize) -> Progress {
        let on_terminal = std::io::stderr().is_terminal();
        let bar = on_terminal.then(|| {
            let bar = ProgressBar::new(n_runs as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left: {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            n_runs,
            observer: Arc::new(Unobserved),
        }
    }

    /// A progress reporter that prints nothing (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress {
            bar: Some(ProgressBar::hidden()),
            n_runs: 0,
            observer: Arc::new(Unobserved),
        }
    }

    /// The same progress, also reported to `observer` as it happens.
    pub fn observed_by(self, observer: Arc<dyn Observer>) -> Progress {
        Progress { observer, ..self }
    }

    /// Who follows the study live (by default nobody).
    pub fn observer(&self) -> &dyn Observer {
        self.observer.as_ref()
    }

    pub fn start_run(&self, idx: usize, id: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(id.to_string()),
            None => say(&format!("[{}/{}] {id} ...", idx + 1, self.n_runs)),
        }
    }

    pub fn finish_run(&self, run: &RunRecord) {
        let outcome = match run.status {
            RunStatus::Completed => format!("done in {:.1} s", run.elapsed_s),
            RunStatus::Failed => format!(
                "FAILED: {}",
                run.failure.as_deref().unwrap_or("no reason recorded")
            ),
            RunStatus::Interrupted => "interrupted".to_string(),
        };
        self.note(&format!("{}: {outcome}", run.id));
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say(line),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One line on stderr, dropped when stderr is closed or broken (`eprintln!` would panic).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
