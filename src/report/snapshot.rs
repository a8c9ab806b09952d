//! The snapshot summary: the figures that matter, rounded so that run-to-run noise does
//! not change the text, but a real change in sharing behaviour does. Committed snapshots
//! of it turn such a change into a reviewable diff.
//!
//! Rounding: NP, STP, ANTT and fairness to the nearest 0.05; modes ranked by STP;
//! VALID counts and SLO verdicts (repetitions that met the SLO) exact. Throughputs and
//! latencies are left out: they belong to the machine.

use crate::metrics::{Analysis, Estimate};
use crate::results::Study;

/// The granularity of rounded figures.
pub const STEP: f64 = 0.05;

fn rounded(e: Option<&Estimate>) -> String {
    match e {
        Some(e) if e.mean.is_finite() => format!("{:.2}", (e.mean / STEP).round() * STEP),
        _ => "-".to_string(),
    }
}

/// Renders the snapshot summary.
pub fn render(study: &Study, analysis: &Analysis) -> String {
    let mut out = format!("scenario: {}\n", study.scenario.name);
    let n_valid = analysis.runs.iter().filter(|r| r.verdict.valid).count();
    out.push_str(&format!("runs: {n_valid}/{} VALID\n", analysis.runs.len()));
    if let Some(sentence) = super::Completeness::of(study).sentence() {
        out.push_str(&format!("{sentence}\n"));
    }
    for group in &analysis.groups {
        out.push_str(&format!(
            "{} c{}: {}/{} VALID",
            group.mode, group.config_idx, group.n_valid, group.n_runs
        ));
        if group.mode.concurrent() {
            out.push_str(&format!(
                ", STP {}, ANTT {}, fairness {}",
                rounded(group.stp.as_ref()),
                rounded(group.antt.as_ref()),
                rounded(group.fairness.as_ref())
            ));
        }
        out.push('\n');
        for t in &group.tenants {
            out.push_str(&format!(
                "  {} ({}): NP {}",
                t.name,
                t.workload,
                rounded(t.np.as_ref())
            ));
            if let (Some(met), Some(judged)) = (t.slo_met, t.slo_judged) {
                out.push_str(&format!(", SLO met {met}/{judged}"));
            }
            out.push('\n');
        }
    }
    let mut ranking: Vec<(String, f64)> = analysis
        .groups
        .iter()
        .filter_map(|g| {
            g.stp.map(|s| {
                (
                    format!("{} c{}", g.mode, g.config_idx),
                    (s.mean / STEP).round() * STEP,
                )
            })
        })
        .collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let names: Vec<String> = ranking.into_iter().map(|(name, _)| name).collect();
    out.push_str(&format!("ranking by STP: {}\n", names.join(" > ")));
    out
}
