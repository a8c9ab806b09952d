//! Reports: the views rendered from a recorded study (terminal table, Markdown, JSON,
//! snapshot summary). The schema and its store are the `results` module's.
//!
//! **Invariant:** reports measure nothing; every view is computed from a
//! [`crate::results::Study`] alone, so any study can be re-rendered later.

pub mod charts;
pub mod compare;
pub mod completeness;
mod error;
mod format;
pub mod html;
pub mod recommend;
pub mod snapshot;
mod sweep;
pub mod text;

pub use error::ReportError;
/// Three significant digits, the rounding the report's tables print figures with.
pub use format::sig3;

use serde::Serialize;

pub use completeness::{Completeness, Incomplete};

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
    /// One self-contained HTML page with charts (inline SVG, no scripts, opens offline).
    Html,
    /// One chart as SVG: the one `--chart` names (default `np`).
    Svg,
}

/// What the JSON view holds: the study's identity and every computed figure.
#[derive(Serialize)]
struct JsonReport<'a> {
    scenario: &'a str,
    started_at: &'a str,
    interrupted: bool,
    /// Runs the plan has.
    planned_runs: usize,
    /// Runs that ran to their end.
    recorded_runs: usize,
    /// Why fewer runs were recorded than planned; absent for a complete study.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<String>,
    environment: &'a crate::environment::Environment,
    analysis: &'a Analysis,
}

/// Renders one chart of a study as SVG (see [`charts::CHARTS`] for the names).
pub fn render_chart(study: &Study, name: &str) -> Result<String, ReportError> {
    charts::render(study, &metrics::analyze(study), name)
}

/// Renders a study in the given format, recomputing every figure from its records.
pub fn render(study: &Study, format: Format) -> String {
    render_analyzed(study, &metrics::analyze(study), format)
}

/// Renders a study in the given format from its figures already computed
/// ([`metrics::analyze`] of the same study), for callers that need them as well.
pub fn render_analyzed(study: &Study, analysis: &Analysis, format: Format) -> String {
    match format {
        Format::Table => text::render(study, analysis, text::TextStyle::Terminal),
        Format::Markdown => {
            let mut out = text::render(study, analysis, text::TextStyle::Markdown);
            let recommendations = metrics::recommend::recommend(study, analysis, None);
            out.push_str("\n## Recommendation\n\n");
            out.push_str(&recommend::render(study, &recommendations));
            out
        }
        Format::Summary => snapshot::render(study, analysis),
        Format::Html => html::render(study, analysis),
        // The default chart always draws: plotters' SVG backend writes into a String.
        Format::Svg => charts::render(study, analysis, "np").unwrap_or_default(),
        Format::Json => {
            let completeness = Completeness::of(study);
            let report = JsonReport {
                scenario: &study.scenario.name,
                started_at: &study.started_at,
                interrupted: study.interrupted,
                planned_runs: completeness.planned,
                recorded_runs: completeness.recorded,
                incomplete: completeness.sentence(),
                environment: &study.environment,
                analysis,
            };
            // Plain data with string keys: serialization cannot fail.
            let mut json = serde_json::to_string_pretty(&report).unwrap_or_default();
            json.push('\n');
            json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing;

    #[test]
    fn failed_requests_and_slo_verdicts_reach_the_markdown_table() {
        let table = render(&testing::serving_study(), Format::Markdown);
        assert!(
            table.contains("| SLO attained | SLO met | failed |"),
            "{table}"
        );
        assert!(
            table.contains("| 100.0%       | 2/2     | -      |"),
            "{table}"
        );
        assert!(
            table.contains("| 92.5%        | 1/2     | 7.50%  |"),
            "{table}"
        );
    }
}
