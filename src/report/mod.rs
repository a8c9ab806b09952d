//! Reports: the views rendered from a recorded study (terminal table, Markdown, JSON,
//! snapshot summary). The schema and its store are the `results` module's.
//!
//! **Invariant:** reports measure nothing; every view is computed from a
//! [`crate::results::Study`] alone, so any study can be re-rendered later.

mod format;
pub mod snapshot;
mod sweep;
pub mod text;

use serde::Serialize;

use crate::metrics::{self, Analysis};
use crate::results::Study;

/// The report formats `gpushare report --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables for a terminal.
    Table,
    /// Markdown, for pull requests and notebooks.
    Markdown,
    /// The computed figures as JSON, for scripts.
    Json,
    /// The noise-tolerant summary committed as a snapshot.
    Summary,
}

/// What the JSON view holds: the study's identity and every computed figure.
#[derive(Serialize)]
struct JsonReport<'a> {
    scenario: &'a str,
    started_at: &'a str,
    interrupted: bool,
    environment: &'a crate::environment::Environment,
    analysis: &'a Analysis,
}

/// Renders a study in the given format, recomputing every figure from its records.
pub fn render(study: &Study, format: Format) -> String {
    let analysis = metrics::analyze(study);
    match format {
        Format::Table => text::render(study, &analysis, text::TextStyle::Terminal),
        Format::Markdown => text::render(study, &analysis, text::TextStyle::Markdown),
        Format::Summary => snapshot::render(study, &analysis),
        Format::Json => {
            let report = JsonReport {
                scenario: &study.scenario.name,
                started_at: &study.started_at,
                interrupted: study.interrupted,
                environment: &study.environment,
                analysis: &analysis,
            };
            // Plain data with string keys: serialization cannot fail.
            let mut json = serde_json::to_string_pretty(&report).unwrap_or_default();
            json.push('\n');
            json
        }
    }
}
