//! Comparing two analyses of the same scenario: for each mode, configuration and tenant
//! present in both, how NP, throughput, P50, P99 and STP changed, with a bootstrap
//! confidence interval of the relative change, labelled the way criterion labels a
//! benchmark's change: a change counts only when its whole 95% interval lies beyond the
//! noise threshold (criterion's `compare_to_threshold`); otherwise it is within noise.

use serde::{Deserialize, Serialize};

use super::analysis::{Analysis, RunAnalysis};
use super::stats::{bootstrap_change_ci, mean};

/// A figure `compare` judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Normalized progress (unitless; higher is better).
    Np,
    /// Throughput, in the tenant's items per second (higher is better).
    Throughput,
    /// Median step or latency, in milliseconds (lower is better).
    P50,
    /// 99th-percentile step or latency, in milliseconds (lower is better).
    P99,
    /// System throughput of the mode (unitless; higher is better).
    Stp,
}

impl Figure {
    pub fn name(self) -> &'static str {
        match self {
            Figure::Np => "NP",
            Figure::Throughput => "throughput",
            Figure::P50 => "P50",
            Figure::P99 => "P99",
            Figure::Stp => "STP",
        }
    }

    fn higher_is_better(self) -> bool {
        !matches!(self, Figure::P50 | Figure::P99)
    }
}

/// What a change amounts to against the noise threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    WithinNoise,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// One figure of one tenant (or of the mode, for STP) in both studies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureChange {
    /// The mode as reports name it (`mps(atp=50)`).
    pub mode: String,
    pub config_idx: usize,
    /// The tenant; absent for STP, a figure of the whole mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub figure: Figure,
    /// Mean over the base study's VALID repetitions, in the figure's unit.
    pub base: f64,
    /// Mean over the new study's VALID repetitions, in the figure's unit.
    pub new: f64,
    /// Relative change of the mean, `new / base - 1` (0.05 is +5%).
    pub change: f64,
    /// Lower end of the 95% bootstrap interval of `change`.
    pub ci_low: f64,
    /// Upper end of the 95% bootstrap interval of `change`.
    pub ci_high: f64,
    /// Repetitions behind `base` and `new`.
    pub n_base: usize,
    pub n_new: usize,
    pub verdict: Verdict,
}

/// Every figure compared, in the base study's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The noise threshold, as a relative change (0.05 for 5%).
    pub threshold: f64,
    pub changes: Vec<FigureChange>,
}

impl Comparison {
    /// Whether any figure regressed beyond the threshold.
    pub fn regressed(&self) -> bool {
        self.changes.iter().any(|c| c.verdict == Verdict::Regressed)
    }
}

/// criterion's rule: a change whose whole interval lies beyond `threshold` on one side.
pub fn judge(figure: Figure, ci: (f64, f64), threshold: f64) -> Verdict {
    let (low, high) = ci;
    let better_if_up = figure.higher_is_better();
    if low > threshold && high > threshold {
        if better_if_up {
            Verdict::Improved
        } else {
            Verdict::Regressed
        }
    } else if low < -threshold && high < -threshold {
        if better_if_up {
            Verdict::Regressed
        } else {
            Verdict::Improved
        }
    } else {
        Verdict::WithinNoise
    }
}

/// The VALID runs of one mode and configuration.
fn valid_runs<'a>(analysis: &'a Analysis, mode: &str, config_idx: usize) -> Vec<&'a RunAnalysis> {
    analysis
        .runs
        .iter()
        .filter(|r| r.verdict.valid && r.config_idx == config_idx && r.mode.to_string() == mode)
        .collect()
}

/// Compares `new` against `base`; `threshold` is the noise threshold (0.05 for 5%).
pub fn compare(base: &Analysis, new: &Analysis, threshold: f64) -> Comparison {
    let mut changes = vec![];
    for group in &base.groups {
        let mode = group.mode.to_string();
        let base_runs = valid_runs(base, &mode, group.config_idx);
        let new_runs = valid_runs(new, &mode, group.config_idx);
        if base_runs.is_empty() || new_runs.is_empty() {
            continue;
        }
        let mut push =
            |tenant: Option<&str>, figure: Figure, pick: &dyn Fn(&RunAnalysis) -> Option<f64>| {
                let b: Vec<f64> = base_runs.iter().filter_map(|r| pick(r)).collect();
                let n: Vec<f64> = new_runs.iter().filter_map(|r| pick(r)).collect();
                if b.is_empty() || n.is_empty() {
                    return;
                }
                let (base_mean, new_mean) = (mean(&b), mean(&n));
                let ci = bootstrap_change_ci(&b, &n, 0.95);
                changes.push(FigureChange {
                    mode: mode.clone(),
                    config_idx: group.config_idx,
                    tenant: tenant.map(str::to_string),
                    figure,
                    base: base_mean,
                    new: new_mean,
                    change: new_mean / base_mean - 1.0,
                    ci_low: ci.0,
                    ci_high: ci.1,
                    n_base: b.len(),
                    n_new: n.len(),
                    verdict: judge(figure, ci, threshold),
                });
            };
        for tenant in &group.tenants {
            let name = tenant.name.as_str();
            let of = |r: &RunAnalysis| r.tenants.iter().find(|t| t.name == name).cloned();
            if group.mode.concurrent() {
                push(Some(name), Figure::Np, &|r| of(r).and_then(|t| t.np));
            }
            push(Some(name), Figure::Throughput, &|r| {
                of(r).map(|t| t.throughput_items_per_s)
            });
            push(Some(name), Figure::P50, &|r| {
                of(r).and_then(|t| t.latency.or(t.step)).map(|s| s.p50_ms)
            });
            push(Some(name), Figure::P99, &|r| {
                of(r).and_then(|t| t.latency.or(t.step)).map(|s| s.p99_ms)
            });
        }
        // STP sums NP over the tenants: comparable only over the same tenants.
        let names = |runs: &[&RunAnalysis]| -> Vec<Vec<String>> {
            runs.iter()
                .map(|r| r.tenants.iter().map(|t| t.name.clone()).collect())
                .collect()
        };
        let (base_names, new_names) = (names(&base_runs), names(&new_runs));
        if base_names
            .iter()
            .chain(&new_names)
            .all(|n| *n == base_names[0])
        {
            push(None, Figure::Stp, &|r| r.sharing.map(|s| s.stp));
        }
    }
    Comparison { threshold, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_only_when_its_whole_interval_is_beyond_the_threshold() {
        let t = 0.05;
        assert_eq!(judge(Figure::Np, (-0.12, -0.08), t), Verdict::Regressed);
        assert_eq!(judge(Figure::Np, (0.06, 0.08), t), Verdict::Improved);
        assert_eq!(judge(Figure::Np, (-0.08, -0.02), t), Verdict::WithinNoise);
        assert_eq!(judge(Figure::Np, (-0.2, 0.2), t), Verdict::WithinNoise);
        // Latency: higher is worse.
        assert_eq!(judge(Figure::P99, (0.06, 0.3), t), Verdict::Regressed);
        assert_eq!(judge(Figure::P50, (-0.3, -0.06), t), Verdict::Improved);
    }
}
