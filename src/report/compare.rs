//! `gpushare compare`: what changed between two studies of one scenario, beyond noise, as
//! a terminal table, Markdown for a pull-request comment, or JSON. The statistics are
//! `metrics::compare`'s; this file checks the studies are comparable and renders.

use serde::Serialize;

use super::error::ReportError;
use super::format::sig3;
use super::text::TextStyle;
use crate::metrics::compare::{Comparison, Verdict};
use crate::results::Study;

/// The forms `gpushare compare --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// A table for a terminal.
    Table,
    /// Markdown, for a pull-request comment.
    Markdown,
    /// Every compared figure as JSON, for scripts.
    Json,
}

/// The GPU a study ran on, as its monitor named it.
fn gpu_of(study: &Study) -> String {
    study
        .runs
        .iter()
        .filter_map(|r| r.monitor.as_ref().and_then(|m| m.gpu_name.clone()))
        .next()
        .unwrap_or_else(|| "no GPU recorded".to_string())
}

/// Refuses studies of different scenarios or GPUs: their figures do not measure the same.
pub fn check_comparable(base: &Study, new: &Study) -> Result<(), ReportError> {
    if base.scenario.name != new.scenario.name {
        return Err(ReportError::Mismatch {
            what: "scenarios",
            base: base.scenario.name.clone(),
            new: new.scenario.name.clone(),
        });
    }
    let (base_gpu, new_gpu) = (gpu_of(base), gpu_of(new));
    if base_gpu != new_gpu {
        return Err(ReportError::Mismatch {
            what: "GPUs",
            base: base_gpu,
            new: new_gpu,
        });
    }
    Ok(())
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:+.1}%", v * 100.0)
    } else {
        "-".to_string()
    }
}

#[derive(Serialize)]
struct JsonComparison<'a> {
    base: &'a str,
    new: &'a str,
    regressed: bool,
    #[serde(flatten)]
    comparison: &'a Comparison,
}

/// Renders a comparison; `base_name` and `new_name` say which studies were compared.
pub fn render(
    comparison: &Comparison,
    base_name: &str,
    new_name: &str,
    format: CompareFormat,
) -> String {
    let style = match format {
        CompareFormat::Json => {
            let json = JsonComparison {
                base: base_name,
                new: new_name,
                regressed: comparison.regressed(),
                comparison,
            };
            // Plain data with string keys: serialization cannot fail.
            let mut out = serde_json::to_string_pretty(&json).unwrap_or_default();
            out.push('\n');
            return out;
        }
        CompareFormat::Markdown => TextStyle::Markdown,
        CompareFormat::Table => TextStyle::Terminal,
    };
    let count = |v: Verdict| comparison.changes.iter().filter(|c| c.verdict == v).count();
    let summary = format!(
        "{} regressed, {} improved, {} within noise (noise threshold {:.0}%; a change counts \
         when its whole 95% bootstrap interval lies beyond it)",
        count(Verdict::Regressed),
        count(Verdict::Improved),
        count(Verdict::WithinNoise),
        comparison.threshold * 100.0
    );
    let mut out = match style {
        TextStyle::Markdown => {
            format!("### gpushare compare\n\n`{base_name}` → `{new_name}`: {summary}\n\n")
        }
        TextStyle::Terminal => format!("gpushare compare {base_name} -> {new_name}\n{summary}\n\n"),
    };
    let mut rows = vec![vec![
        "mode".to_string(),
        "config".into(),
        "tenant".into(),
        "figure".into(),
        "base".into(),
        "new".into(),
        "change [95% CI]".into(),
        "verdict".into(),
    ]];
    for c in &comparison.changes {
        let verdict = match (c.verdict, style) {
            (Verdict::Regressed, TextStyle::Markdown) => "**regressed**".to_string(),
            (v, _) => v.label().to_string(),
        };
        rows.push(vec![
            c.mode.clone(),
            format!("c{}", c.config_idx),
            c.tenant.clone().unwrap_or_else(|| "(all)".to_string()),
            c.figure.name().to_string(),
            sig3(c.base),
            sig3(c.new),
            format!("{} [{}, {}]", pct(c.change), pct(c.ci_low), pct(c.ci_high)),
            verdict,
        ]);
    }
    out.push_str(&super::text::table(rows, style));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing;

    #[test]
    fn studies_of_different_scenarios_are_refused_with_the_reason() {
        let base = testing::serving_study();
        let mut new = base.clone();
        new.scenario.name = "other".into();
        let err = check_comparable(&base, &new).unwrap_err();
        assert_eq!(
            err.to_string(),
            "comparing studies of different scenarios (base `serving`, new `other`): their \
             figures do not measure the same thing; add --force to compare them anyway"
        );
        assert_eq!(check_comparable(&base, &base.clone()), Ok(()));
    }

    #[test]
    fn studies_of_different_gpus_are_refused() {
        let base = testing::serving_study();
        let mut new = base.clone();
        new.runs[0].monitor = Some(crate::monitor::MonitorSeries {
            gpu_name: Some("NVIDIA H200".into()),
            ..Default::default()
        });
        let err = check_comparable(&base, &new).unwrap_err();
        assert_eq!(
            err,
            ReportError::Mismatch {
                what: "GPUs",
                base: "no GPU recorded".into(),
                new: "NVIDIA H200".into()
            }
        );
    }
}
