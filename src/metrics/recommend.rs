//! `recommend`: the sharing mode (and MPS split) to choose for a study's mix. Among the
//! modes whose every SLO was met in every VALID repetition (and whose fairness is at least
//! the asked minimum), the one with the highest STP; `exclusive` counts as STP 1 and
//! fairness 1 (the tenants one after another, each with the whole GPU a 1/n share of the
//! time: NP 1/n each), so a mix that no shared mode serves is told not to share.
//!
//! STPs the measurement cannot tell apart are a tie, not a ranking: two modes tie when
//! their STPs' ranges overlap: a 95% confidence interval over two or more repetitions, a
//! figure from one repetition taken as ± [`TIE_FRACTION`] of itself (so two such figures
//! tie within about twice that), exclusive's exact 1. Of the modes that
//! tie with the highest STP, the simplest to run is chosen (exclusive, then time-slicing,
//! then MPS without limits, MPS with limits, MIG), and the recommendation says it was a
//! tie. Pure: reads the study's plan for the SLOs and the analysis.

use serde::{Deserialize, Serialize};

use super::analysis::{Analysis, GroupAnalysis};
use super::sharing::SharingFigures;
use super::stats::Estimate;
use crate::results::Study;
use crate::scenario::Slo;
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
    /// The tenant closest to its SLO target under this mode, when any has one: how much
    /// room the mode leaves, which the STP does not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tightest_slo: Option<SloMargin>,
}

/// A tenant's measured SLO percentile against its target (means over VALID repetitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloMargin {
    pub tenant: String,
    /// The percentile judged, in percent.
    pub percentile: f64,
    /// The target, in milliseconds.
    pub target_ms: f64,
    /// The percentile as measured, mean over VALID repetitions, in milliseconds.
    pub observed_ms: f64,
}

impl SloMargin {
    /// The share of its target the measured percentile uses (below 1 when met).
    pub fn used(&self) -> f64 {
        self.observed_ms / self.target_ms
    }
}

/// How much less of its target a tied mode's tightest tenant must use than the choice's
/// before the recommendation points it out: a tenth of the target.
pub const HEADROOM_NOTE_FRACTION: f64 = 0.1;

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
    /// The other modes whose STP ties with the choice's (the choice is the simplest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ties: Vec<ModeSetting>,
    /// Of the tied modes, the one leaving its tightest tenant the most room under its SLO,
    /// when that is at least [`HEADROOM_NOTE_FRACTION`] of the target more than the
    /// choice leaves: the simplest setup is chosen, and this says what it gives up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roomier_tie: Option<Candidate>,
    /// One entry per other mode, saying why it was not chosen.
    pub rejected: Vec<Rejection>,
}

/// The SLO the plan gives tenant `name` in the group's configuration.
fn planned_slo<'a>(study: &'a Study, group: &GroupAnalysis, name: &str) -> Option<&'a Slo> {
    study
        .plan
        .configs
        .get(group.config_idx)?
        .tenants
        .iter()
        .find(|i| i.name == name)?
        .slo
        .as_ref()
}

/// Why a group cannot be chosen, or `None` when it meets every constraint.
fn rejection(study: &Study, group: &GroupAnalysis, min_fairness: Option<f64>) -> Option<String> {
    if group.n_valid == 0 {
        return Some(format!(
            "no VALID repetition (0 of {}): nothing measured here can be relied on",
            group.n_runs
        ));
    }
    for t in &group.tenants {
        let (Some(met), Some(judged)) = (t.slo_met, t.slo_judged) else {
            continue;
        };
        if met < judged {
            let slo = planned_slo(study, group, &t.name)
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

/// The range, as a fraction of itself, given to an STP from a single repetition (which has
/// no confidence interval). Small against what the H200 showed between days: the probes
/// mix's MPS at 50% SMs measured STP 2.23 and then 2.03 (results/h200/README.md).
pub const TIE_FRACTION: f64 = 0.02;

/// A group's STP and the range the measurement allows for it: its 95% CI over two or more
/// repetitions, [`TIE_FRACTION`] around a single one, the value itself for exclusive (1 by
/// definition).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stp {
    mean: f64,
    low: f64,
    high: f64,
}

impl Stp {
    fn exact(value: f64) -> Self {
        Self {
            mean: value,
            low: value,
            high: value,
        }
    }

    fn measured(estimate: Estimate) -> Self {
        if estimate.n >= 2 {
            Self {
                mean: estimate.mean,
                low: estimate.ci_low.min(estimate.mean),
                high: estimate.ci_high.max(estimate.mean),
            }
        } else {
            Self {
                mean: estimate.mean,
                low: estimate.mean * (1.0 - TIE_FRACTION),
                high: estimate.mean * (1.0 + TIE_FRACTION),
            }
        }
    }

    fn ties(&self, other: &Self) -> bool {
        self.low <= other.high && other.low <= self.high
    }
}

fn stp_of(group: &GroupAnalysis) -> Option<Stp> {
    if group.mode == ModeSetting::Exclusive {
        return Some(Stp::exact(SharingFigures::of(&exclusive_np(group)).stp));
    }
    group.stp.map(Stp::measured)
}

/// How much there is to set up and run: the order in which tied modes are preferred.
fn complexity(mode: &ModeSetting) -> u8 {
    match mode {
        ModeSetting::Exclusive => 0,
        ModeSetting::TimeSlicing => 1,
        ModeSetting::Mps(setting) if *setting == Default::default() => 2,
        ModeSetting::Mps(_) => 3,
        ModeSetting::Mig(_) => 4,
    }
}

/// Two figures with two decimals, or as many more (up to four) as it takes for them to
/// read differently when they differ.
fn apart(a: f64, b: f64) -> (String, String) {
    (2..=4)
        .map(|digits| (format!("{a:.digits$}"), format!("{b:.digits$}")))
        .find(|(x, y)| x != y)
        .unwrap_or_else(|| (format!("{a:.2}"), format!("{b:.2}")))
}

/// Orders accepted candidates: the choice first (of those tied with the highest STP, the
/// simplest), then those tied with it (simplest first), then the rest by STP. Returns how
/// many lead the order tied (the choice included).
fn rank(accepted: &mut [(Candidate, Stp)]) -> usize {
    accepted.sort_by(|a, b| b.1.mean.total_cmp(&a.1.mean));
    let Some(top) = accepted.first().map(|(_, stp)| *stp) else {
        return 0;
    };
    let n_tied = accepted.iter().filter(|(_, stp)| stp.ties(&top)).count();
    // Stable: among ties of equal complexity the higher STP stays first, and the candidates
    // that do not tie with the top stay behind every one that does, by STP.
    accepted.sort_by(
        |(a, a_stp), (b, b_stp)| match (a_stp.ties(&top), b_stp.ties(&top)) {
            (true, true) => complexity(&a.mode).cmp(&complexity(&b.mode)),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => std::cmp::Ordering::Equal,
        },
    );
    n_tied
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

/// The tenant whose measured SLO percentile uses the largest share of its target.
fn tightest_slo(study: &Study, group: &GroupAnalysis) -> Option<SloMargin> {
    group
        .tenants
        .iter()
        .filter_map(|t| {
            let slo = planned_slo(study, group, &t.name)?;
            Some(SloMargin {
                tenant: t.name.clone(),
                percentile: slo.percentile,
                target_ms: slo.target_ms,
                observed_ms: t.slo_observed_ms?.mean,
            })
        })
        .filter(|m| m.target_ms > 0.0 && m.observed_ms.is_finite())
        .max_by(|a, b| a.used().total_cmp(&b.used()))
}

fn candidate(study: &Study, group: &GroupAnalysis, stp: f64) -> Candidate {
    Candidate {
        tightest_slo: tightest_slo(study, group),
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

/// Whether `other` leaves its tightest tenant at least [`HEADROOM_NOTE_FRACTION`] more of
/// its SLO target than `best` does.
fn roomier(other: &Candidate, best: &Candidate) -> bool {
    match (&other.tightest_slo, &best.tightest_slo) {
        (Some(theirs), Some(ours)) => ours.used() - theirs.used() >= HEADROOM_NOTE_FRACTION,
        _ => false,
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
            let mut accepted: Vec<(Candidate, Stp)> = vec![];
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
                    (None, Some(stp)) => accepted.push((candidate(study, group, stp.mean), stp)),
                }
            }
            let n_tied = rank(&mut accepted);
            // The modes tied with the choice, which leads the order.
            let tied = accepted.get(1..n_tied).unwrap_or_default();
            let ties: Vec<ModeSetting> = tied.iter().map(|(c, _)| c.mode.clone()).collect();
            let roomier_tie = accepted.first().and_then(|(best, _)| {
                tied.iter()
                    .filter(|(c, _)| roomier(c, best))
                    .filter_map(|(c, _)| Some((c, c.tightest_slo.as_ref()?.used())))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(c, _)| c.clone())
            });
            let mut accepted = accepted.into_iter().map(|(c, _)| c).enumerate();
            let choice = accepted.next().map(|(_, c)| c);
            let runner_up = accepted.next();
            if let Some(best) = &choice {
                for (idx, other) in runner_up.iter().cloned().chain(accepted) {
                    let (theirs, ours) = apart(other.stp, best.stp);
                    let reason = if idx < n_tied {
                        format!(
                            "met every constraint and its STP {theirs} ties with {}'s {ours} \
                             within what the measurement can tell apart; {} is the simpler \
                             setup",
                            best.mode, best.mode
                        )
                    } else {
                        format!(
                            "met every constraint, but its STP {theirs} is below {}'s {ours}",
                            best.mode
                        )
                    };
                    rejected.push(Rejection {
                        reason,
                        mode: other.mode,
                    });
                }
            }
            Recommendation {
                config_idx,
                choice,
                runner_up: runner_up.map(|(_, c)| c),
                ties,
                roomier_tie,
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

    fn mps(atp: Option<u32>) -> ModeSetting {
        ModeSetting::Mps(crate::sharing::MpsSetting {
            active_thread_percentage: atp,
            ..Default::default()
        })
    }

    fn accepted(mode: ModeSetting, stp: Stp) -> (Candidate, Stp) {
        let candidate = Candidate {
            mode,
            stp: stp.mean,
            stp_closed_loop: None,
            fairness: 1.0,
            n_valid: 1,
            n_runs: 1,
            keeps: vec![],
            tightest_slo: None,
        };
        (candidate, stp)
    }

    fn one_rep(mean: f64) -> Stp {
        Stp::measured(Estimate {
            mean,
            ci_low: mean,
            ci_high: mean,
            cv: 0.0,
            n: 1,
        })
    }

    fn reps(mean: f64, ci_low: f64, ci_high: f64) -> Stp {
        Stp::measured(Estimate {
            mean,
            ci_low,
            ci_high,
            cv: 0.01,
            n: 3,
        })
    }

    fn modes(ranked: &[(Candidate, Stp)]) -> Vec<ModeSetting> {
        ranked.iter().map(|(c, _)| c.mode.clone()).collect()
    }

    #[test]
    fn tied_stps_choose_the_simplest_mode_and_say_how_many_tie() {
        // One tenant: every mode is STP 1, and not sharing is the simplest.
        let mut one = vec![
            accepted(ModeSetting::TimeSlicing, one_rep(1.003)),
            accepted(mps(None), one_rep(1.0)),
            accepted(ModeSetting::Exclusive, Stp::exact(1.0)),
        ];
        assert_eq!(rank(&mut one), 3);
        assert_eq!(
            modes(&one),
            [ModeSetting::Exclusive, ModeSetting::TimeSlicing, mps(None)]
        );
        // One repetition each, ±2% ranges overlapping: time-slicing over MPS, exclusive far
        // behind.
        let mut two = vec![
            accepted(mps(None), one_rep(7.92)),
            accepted(ModeSetting::Exclusive, Stp::exact(1.0)),
            accepted(ModeSetting::TimeSlicing, one_rep(7.90)),
        ];
        assert_eq!(rank(&mut two), 2);
        assert_eq!(
            modes(&two),
            [ModeSetting::TimeSlicing, mps(None), ModeSetting::Exclusive]
        );
        // Overlapping CIs: plain MPS over MPS with an SM limit, though its mean is lower.
        let mut three = vec![
            accepted(mps(Some(50)), reps(1.56, 1.52, 1.60)),
            accepted(mps(None), reps(1.53, 1.49, 1.57)),
            accepted(ModeSetting::TimeSlicing, reps(1.45, 1.43, 1.47)),
        ];
        assert_eq!(rank(&mut three), 2);
        assert_eq!(
            modes(&three),
            [mps(None), mps(Some(50)), ModeSetting::TimeSlicing]
        );
    }

    #[test]
    fn stps_the_measurement_tells_apart_rank_by_stp() {
        let mut ranked = vec![
            accepted(ModeSetting::TimeSlicing, reps(1.32, 1.30, 1.34)),
            accepted(ModeSetting::Exclusive, Stp::exact(1.0)),
            accepted(mps(None), reps(1.74, 1.70, 1.78)),
        ];
        assert_eq!(rank(&mut ranked), 1);
        assert_eq!(
            modes(&ranked),
            [mps(None), ModeSetting::TimeSlicing, ModeSetting::Exclusive]
        );
        assert_eq!(rank(&mut []), 0);
    }

    #[test]
    fn figures_get_the_digits_that_tell_them_apart() {
        assert_eq!(apart(1.5, 2.25), ("1.50".into(), "2.25".into()));
        assert_eq!(apart(1.001, 1.004), ("1.001".into(), "1.004".into()));
        assert_eq!(apart(1.0, 1.0), ("1.00".into(), "1.00".into()));
    }

    proptest::proptest! {
        /// Whatever the STPs: the choice ties with the highest STP, every mode that ties
        /// with it comes before every one that does not, ties run simplest first, and the
        /// rest by STP.
        #[test]
        fn the_ranking_is_ties_simplest_first_then_stp(
            figures in proptest::collection::vec((0.5_f64..4.0, 0.0_f64..0.3, 0_u8..4, proptest::bool::ANY), 1..6)
        ) {
            let mut ranked: Vec<(Candidate, Stp)> = figures
                .iter()
                .map(|&(mean, half, kind, single)| {
                    let mode = match kind {
                        0 => ModeSetting::Exclusive,
                        1 => ModeSetting::TimeSlicing,
                        2 => mps(None),
                        _ => mps(Some(50)),
                    };
                    let stp = match (kind, single) {
                        (0, _) => Stp::exact(mean),
                        (_, true) => one_rep(mean),
                        (_, false) => reps(mean, mean - half, mean + half),
                    };
                    accepted(mode, stp)
                })
                .collect();
            let top = ranked.iter().map(|(_, s)| *s).max_by(|a, b| a.mean.total_cmp(&b.mean)).unwrap();
            let n_tied = rank(&mut ranked);
            proptest::prop_assert!(n_tied >= 1);
            proptest::prop_assert!(ranked[0].1.ties(&top));
            for (idx, (candidate, stp)) in ranked.iter().enumerate() {
                proptest::prop_assert_eq!(stp.ties(&top), idx < n_tied);
                if let Some((next, next_stp)) = ranked.get(idx + 1) {
                    if idx + 1 < n_tied {
                        proptest::prop_assert!(complexity(&candidate.mode) <= complexity(&next.mode));
                    } else if idx >= n_tied {
                        proptest::prop_assert!(stp.mean >= next_stp.mean);
                    }
                }
            }
        }
    }

    #[test]
    fn a_tie_names_the_tied_mode_that_leaves_more_room_under_the_slo() {
        let study = testing::serving_tied_study();
        let recs = recommend(&study, &analyze(&study), None);
        let rec = &recs[0];
        let choice = rec.choice.as_ref().unwrap();
        assert_eq!(choice.mode, ModeSetting::Exclusive);
        let margin = |c: &Candidate| {
            // Latencies go through a histogram of three significant digits.
            let m = c.tightest_slo.as_ref().unwrap();
            let observed = (m.observed_ms * 10.0).round() / 10.0;
            (m.tenant.clone(), m.percentile, m.target_ms, observed)
        };
        assert_eq!(margin(choice), ("api".into(), 90.0, 10.0, 5.0));
        assert_eq!(rec.ties, [ModeSetting::TimeSlicing, mps(None)]);
        // MPS uses 0.3 of the target against exclusive's 0.5; time-slicing uses more.
        let roomier = rec.roomier_tie.as_ref().unwrap();
        assert_eq!(roomier.mode, mps(None));
        assert_eq!(margin(roomier), ("api".into(), 90.0, 10.0, 3.0));
        // Without a tie there is nothing to point out.
        let serving = testing::serving_study();
        assert_eq!(
            recommend(&serving, &analyze(&serving), None)[0].roomier_tie,
            None
        );
    }

    #[test]
    fn roomier_needs_a_tenth_of_the_target_more_room() {
        let with = |observed_ms: f64| Candidate {
            tightest_slo: Some(SloMargin {
                tenant: "api".into(),
                percentile: 99.0,
                target_ms: 50.0,
                observed_ms,
            }),
            ..accepted(mps(None), one_rep(1.0)).0
        };
        assert!(roomier(&with(31.5), &with(44.7)));
        assert!(!roomier(&with(44.7), &with(31.5)));
        assert!(!roomier(&with(41.0), &with(44.7)));
        assert!(!roomier(&accepted(mps(None), one_rep(1.0)).0, &with(44.7)));
    }

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
