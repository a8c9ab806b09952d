//! `recommend`: the sharing mode (and MPS split) to choose for a study's mix. Among the
//! modes whose every SLO was met in every VALID repetition (and whose fairness is at least
//! the asked minimum), the one with the highest STP; `exclusive` counts as STP 1 and
//! fairness 1 (the tenants one after another, each with the whole GPU a 1/n share of the
//! time: NP 1/n each), so a mix that no shared mode serves is told not to share. Pure: reads the study's plan for the SLOs and the analysis.

use serde::{Deserialize, Serialize};

use super::analysis::{Analysis, GroupAnalysis};
use super::sharing::SharingFigures;
use crate::results::Study;
use crate::sharing::ModeSetting;

/// A mode that met every constraint, with what each tenant keeps under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub mode: ModeSetting,
    /// Mean STP over VALID repetitions; 1 for exclusive (unitless).
    pub stp: f64,
    /// Mean STP over the closed-loop tenants, when the mix has open-loop ones (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp_closed_loop: Option<f64>,
    /// Mean Jain fairness over NP; 1 for exclusive.
    pub fairness: f64,
    pub n_valid: usize,
    pub n_runs: usize,
    /// Each tenant's mean NP under this mode: the share of its solo speed it keeps.
    pub keeps: Vec<TenantKeeps>,
}

/// One tenant under a candidate mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeeps {
    pub name: String,
    /// Mean normalized progress (unitless).
    pub np: f64,
    /// For an open-loop tenant, whether it kept up with its offered load in every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_up: Option<bool>,
}

/// A mode that was not chosen, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub mode: ModeSetting,
    pub reason: String,
}

/// The answer for one configuration of the study's sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub config_idx: usize,
    /// The mode to choose; absent when no mode met every constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Candidate>,
    /// The next best mode that met every constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<Candidate>,
    /// One entry per other mode, saying why it was not chosen.
    pub rejected: Vec<Rejection>,
}

/// Why a group cannot be chosen, or `None` when it meets every constraint.
fn rejection(study: &Study, group: &GroupAnalysis, min_fairness: Option<f64>) -> Option<String> {
    if group.n_valid == 0 {
        return Some(format!(
            "no VALID repetition (0 of {}): nothing measured here can be relied on",
            group.n_runs
        ));
    }
    let config = study.plan.configs.get(group.config_idx);
    for t in &group.tenants {
        let (Some(met), Some(judged)) = (t.slo_met, t.slo_judged) else {
            continue;
        };
        if met < judged {
            let slo = config
                .and_then(|c| c.tenants.iter().find(|i| i.name == t.name))
                .and_then(|i| i.slo.as_ref())
                .map(|s| format!(" (P{} <= {} ms)", s.percentile, s.target_ms))
                .unwrap_or_default();
            return Some(format!(
                "tenant `{}` met its SLO{slo} in {met} of {judged} VALID repetitions",
                t.name
            ));
        }
    }
    if let (Some(min), Some(fairness)) = (min_fairness, fairness_of(group)) {
        if fairness < min {
            return Some(format!("fairness {fairness:.3} is below the minimum {min}"));
        }
    }
    None
}

fn stp_of(group: &GroupAnalysis) -> Option<f64> {
    if group.mode == ModeSetting::Exclusive {
        return Some(SharingFigures::of(&exclusive_np(group)).stp);
    }
    group.stp.map(|e| e.mean)
}

/// Under exclusive each tenant has the whole GPU a 1/n share of the time: NP 1/n each.
fn exclusive_np(group: &GroupAnalysis) -> Vec<f64> {
    let n = group.tenants.len().max(1) as f64;
    vec![1.0 / n; group.tenants.len()]
}

fn fairness_of(group: &GroupAnalysis) -> Option<f64> {
    if group.mode == ModeSetting::Exclusive {
        return Some(1.0);
    }
    group.fairness.map(|e| e.mean)
}

fn candidate(group: &GroupAnalysis, stp: f64) -> Candidate {
    Candidate {
        mode: group.mode.clone(),
        stp,
        stp_closed_loop: group.stp_closed_loop.map(|e| e.mean),
        fairness: fairness_of(group).unwrap_or(f64::NAN),
        n_valid: group.n_valid,
        n_runs: group.n_runs,
        keeps: group
            .tenants
            .iter()
            .zip(exclusive_np(group))
            .map(|(t, alone)| TenantKeeps {
                name: t.name.clone(),
                np: if group.mode == ModeSetting::Exclusive {
                    alone
                } else {
                    t.np.map_or(f64::NAN, |e| e.mean)
                },
                kept_up: t.kept_up.zip(t.np).map(|(kept, np)| kept == np.n),
            })
            .collect(),
    }
}

/// The recommendation for each configuration of a study, in plan order.
pub fn recommend(
    study: &Study,
    analysis: &Analysis,
    min_fairness: Option<f64>,
) -> Vec<Recommendation> {
    let mut configs: Vec<usize> = analysis.groups.iter().map(|g| g.config_idx).collect();
    configs.dedup();
    configs
        .into_iter()
        .map(|config_idx| {
            let mut accepted: Vec<Candidate> = vec![];
            let mut rejected: Vec<Rejection> = vec![];
            for group in analysis
                .groups
                .iter()
                .filter(|g| g.config_idx == config_idx)
            {
                match (rejection(study, group, min_fairness), stp_of(group)) {
                    (Some(reason), _) => rejected.push(Rejection {
                        mode: group.mode.clone(),
                        reason,
                    }),
                    (None, None) => rejected.push(Rejection {
                        mode: group.mode.clone(),
                        reason: "no STP: a tenant has no VALID exclusive baseline".into(),
                    }),
                    (None, Some(stp)) => accepted.push(candidate(group, stp)),
                }
            }
            accepted.sort_by(|a, b| b.stp.total_cmp(&a.stp));
            let mut accepted = accepted.into_iter();
            let choice = accepted.next();
            let runner_up = accepted.next();
            if let Some(best) = &choice {
                for other in runner_up.iter().cloned().chain(accepted) {
                    rejected.push(Rejection {
                        reason: format!(
                            "met every constraint, but its STP {:.2} is below {}'s {:.2}",
                            other.stp, best.mode, best.stp
                        ),
                        mode: other.mode,
                    });
                }
            }
            Recommendation {
                config_idx,
                choice,
                runner_up,
                rejected,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::analyze;
    use crate::results::testing;

    #[test]
    fn a_mode_that_missed_an_slo_once_is_rejected_and_exclusive_remains() {
        let study = testing::serving_study();
        let recs = recommend(&study, &analyze(&study), None);
        assert_eq!(recs.len(), 1);
        let rec = &recs[0];
        assert_eq!(rec.choice.as_ref().unwrap().mode, ModeSetting::Exclusive);
        assert_eq!(rec.runner_up, None);
        assert_eq!(
            rec.rejected,
            vec![Rejection {
                mode: ModeSetting::TimeSlicing,
                reason: "tenant `api` met its SLO (P90 <= 10 ms) in 1 of 2 VALID repetitions"
                    .into()
            }]
        );
    }
}
