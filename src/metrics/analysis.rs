//! From a study's raw records to the figures reports show: per-run tenant figures,
//! normalized progress against the exclusive baseline, sharing figures, verdicts, and
//! estimates across repetitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::baseline::{self, Baseline};
use super::open_loop::{closed_loop_stp, kept_up};
use super::sharing::{normalized_progress, SharingFigures};
use super::stats::Estimate;
use super::throughput::{SloFigures, TenantFigures};
use super::validity::{check_run, FailedCheck, Verdict};
use crate::monitor::{energy_per_item_j, summarize, MonitorSummary};
use crate::results::schema::{RunRecord, RunStatus, Study};
use crate::sharing::ModeSetting;
use crate::workload::{paces_itself, Device};

/// Everything computed from a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub runs: Vec<RunAnalysis>,
    /// Each tenant's pooled exclusive baseline per configuration (identical replicas
    /// share one), the denominator of its NP.
    #[serde(default)]
    pub baselines: Vec<Baseline>,
    /// One group per (mode, configuration), over its repetitions, in plan order.
    pub groups: Vec<GroupAnalysis>,
}

/// One run's figures and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAnalysis {
    pub id: String,
    pub mode: ModeSetting,
    pub config_idx: usize,
    pub repetition: u32,
    pub status: RunStatus,
    pub tenants: Vec<TenantFigures>,
    /// STP, ANTT and fairness; only for shared runs with a baseline for every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingFigures>,
    /// STP over the closed-loop tenants alone, for runs with open-loop tenants too (see
    /// [`super::open_loop`]) (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp_closed_loop: Option<f64>,
    /// GPU figures over each measured window, when a monitor ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu: Vec<WindowGpu>,
    /// Energy the tenants would have used alone for the items they completed here (from
    /// their exclusive joules per item) over the energy this shared window used. Above 1,
    /// sharing saved energy (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_gain: Option<f64>,
    pub verdict: Verdict,
}

/// The GPU over one measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowGpu {
    /// The tenants measured in the window.
    pub tenants: Vec<String>,
    pub summary: MonitorSummary,
}

/// A mode and configuration across repetitions, from its VALID runs (from all its runs,
/// flagged, when none is VALID).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAnalysis {
    pub mode: ModeSetting,
    pub config_idx: usize,
    pub n_runs: usize,
    pub n_valid: usize,
    /// True when no run is VALID and the figures are those the INVALID runs measured:
    /// shown, marked as not valid, so a reader sees why they failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_invalid: bool,
    pub tenants: Vec<TenantGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub antt: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Estimate>,
    /// STP over the closed-loop tenants, when the mix has open-loop tenants too (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp_closed_loop: Option<Estimate>,
    /// Mean GPU utilization over the measured windows, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_gpu_pct: Option<Estimate>,
    /// Peak GPU memory in use (all processes, as NVML counts it) in each measured
    /// window, mean over windows, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_peak_bytes: Option<Estimate>,
    /// Mean board power over the measured windows, in watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<Estimate>,
    /// See [`RunAnalysis::energy_gain`] (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_gain: Option<Estimate>,
    /// Clock throttle reasons NVML reported in any window (idle excluded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttling_seen: Vec<String>,
}

/// One tenant across a group's VALID runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantGroup {
    pub name: String,
    pub workload: String,
    pub device: Device,
    pub item: String,
    /// True for a tenant that paces itself (see [`super::open_loop`]): its NP says whether
    /// it kept up with its offered load, not what capacity it had.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_loop: bool,
    /// For an open-loop tenant in a shared mode: in how many of the runs behind `np` it
    /// kept up with its offered load (NP at least [`super::open_loop::KEPT_UP_NP`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_up: Option<usize>,
    /// Throughput, in items per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_items_per_s: Option<Estimate>,
    /// Normalized progress (unitless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub np: Option<Estimate>,
    /// Median step time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<Estimate>,
    /// 99th-percentile step (or self-measured latency) time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<Estimate>,
    /// SLO attainment, share of samples within target, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_attainment: Option<Estimate>,
    /// The SLO's percentile as measured, in milliseconds (the value `slo_met` compares
    /// with the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_observed_ms: Option<Estimate>,
    /// VALID runs whose SLO percentile met its target, out of `slo_judged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_met: Option<usize>,
    /// VALID runs in which the SLO was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_judged: Option<usize>,
    /// Share of the tenant's units of work that failed (a serving tenant's failed
    /// requests over all it finished), from 0 to 1; absent when none ever failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_fraction: Option<Estimate>,
    /// GPU energy per item while the tenant ran alone, in joules per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_per_item_j: Option<Estimate>,
}

/// Analyzes a study. Pure: reads only the records.
pub fn analyze(study: &Study) -> Analysis {
    let settings = &study.scenario.run;
    let mut runs: Vec<RunAnalysis> = study
        .runs
        .iter()
        .map(|run| {
            let config = study.plan.configs.get(run.config_idx);
            let tenants: Vec<TenantFigures> = run
                .tenants
                .iter()
                .map(|t| {
                    let slo = config
                        .and_then(|c| c.tenants.iter().find(|i| i.name == t.name))
                        .and_then(|i| i.slo.as_ref());
                    TenantFigures::of(t, slo)
                })
                .collect();
            let mut tenants = tenants;
            let gpu = window_gpu(run);
            for window in &gpu {
                // Energy per item is the tenant's own only when it had the GPU alone.
                if let [name] = window.tenants.as_slice() {
                    if let Some(t) = tenants.iter_mut().find(|t| &t.name == name) {
                        t.energy_per_item_j = energy_per_item_j(&window.summary, t.items as f64);
                    }
                }
            }
            let failed = check_run(run, &tenants, settings);
            RunAnalysis {
                id: run.id.clone(),
                mode: run.mode.clone(),
                config_idx: run.config_idx,
                repetition: run.repetition,
                status: run.status,
                tenants,
                sharing: None,
                stp_closed_loop: None,
                gpu,
                energy_gain: None,
                verdict: Verdict::from_checks(failed),
            }
        })
        .collect();

    let pooled = baseline::pool(study, &runs);
    let mut baseline: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut energy_baseline: BTreeMap<(usize, String), f64> = BTreeMap::new();
    for config in &study.plan.configs {
        for instance in &config.tenants {
            let Some(b) = pooled
                .iter()
                .find(|b| b.config_idx == config.config_idx && b.tenant_idx == instance.tenant_idx)
            else {
                continue;
            };
            let key = (config.config_idx, instance.name.clone());
            baseline.insert(key.clone(), b.throughput_items_per_s.mean);
            if let Some(j) = b.energy_per_item_j {
                energy_baseline.insert(key, j);
            }
        }
    }
    for run in &mut runs {
        let mut missing = vec![];
        for t in &mut run.tenants {
            match baseline.get(&(run.config_idx, t.name.clone())) {
                Some(alone) => t.np = normalized_progress(t.throughput_items_per_s, *alone),
                None => missing.push(t.name.clone()),
            }
        }
        if run.mode == ModeSetting::Exclusive {
            continue;
        }
        if missing.is_empty() {
            let np: Vec<f64> = run.tenants.iter().filter_map(|t| t.np).collect();
            run.sharing = Some(SharingFigures::of(&np));
            let kinds: Vec<(f64, bool)> = run
                .tenants
                .iter()
                .filter_map(|t| t.np.map(|np| (np, paces_itself(&t.workload))))
                .collect();
            run.stp_closed_loop = closed_loop_stp(&kinds);
            run.energy_gain = energy_gain(run, &energy_baseline);
        } else {
            for name in missing {
                run.verdict.failed.push(FailedCheck {
                    tenant: Some(name),
                    problem: "no VALID exclusive run to compare against".into(),
                    fix: "fix what made the exclusive runs of this configuration invalid".into(),
                });
            }
            run.verdict.valid = false;
        }
    }
    let groups = groups(&runs);
    Analysis {
        runs,
        baselines: pooled,
        groups,
    }
}

/// The GPU summary of each measured window of a run.
fn window_gpu(run: &RunRecord) -> Vec<WindowGpu> {
    let Some(series) = &run.monitor else {
        return vec![];
    };
    run.windows
        .iter()
        .map(|w| WindowGpu {
            tenants: w.tenants.clone(),
            summary: summarize(series, (w.start_s, w.end_s)),
        })
        .collect()
}

/// Energy alone for the same items over energy shared; see [`RunAnalysis::energy_gain`].
fn energy_gain(
    run: &RunAnalysis,
    alone_j_per_item: &BTreeMap<(usize, String), f64>,
) -> Option<f64> {
    let shared_j = run.gpu.first()?.summary.energy_j?;
    let mut alone_j = 0.0;
    for t in &run.tenants {
        alone_j += alone_j_per_item.get(&(run.config_idx, t.name.clone()))? * t.items as f64;
    }
    (shared_j > 0.0).then(|| alone_j / shared_j)
}

fn groups(runs: &[RunAnalysis]) -> Vec<GroupAnalysis> {
    let mut order: Vec<(ModeSetting, usize)> = vec![];
    for run in runs {
        let key = (run.mode.clone(), run.config_idx);
        if !order.contains(&key) {
            order.push(key);
        }
    }
    order
        .into_iter()
        .map(|(mode, config_idx)| {
            let members: Vec<&RunAnalysis> = runs
                .iter()
                .filter(|r| r.mode == mode && r.config_idx == config_idx)
                .collect();
            let mut valid: Vec<&RunAnalysis> = members
                .iter()
                .copied()
                .filter(|r| r.verdict.valid)
                .collect();
            let n_valid = valid.len();
            // With no VALID run, the figures the INVALID ones measured are still shown
            // (flagged), so that a reader can see what went wrong.
            let from_invalid = n_valid == 0 && !members.is_empty();
            if from_invalid {
                valid = members.clone();
            }
            let names: Vec<&TenantFigures> = members
                .first()
                .map_or(vec![], |r| r.tenants.iter().collect());
            let tenants = names
                .into_iter()
                .map(|first| {
                    let of = |f: &dyn Fn(&TenantFigures) -> Option<f64>| {
                        let values: Vec<f64> = valid
                            .iter()
                            .filter_map(|r| r.tenants.iter().find(|t| t.name == first.name))
                            .filter_map(f)
                            .collect();
                        Estimate::of(&values)
                    };
                    let tail = |t: &TenantFigures| t.latency.or(t.step);
                    let slo_judged = |pick: &dyn Fn(&SloFigures) -> bool| {
                        let judged: Vec<bool> = valid
                            .iter()
                            .filter_map(|r| r.tenants.iter().find(|t| t.name == first.name))
                            .filter_map(|t| t.slo.as_ref().map(pick))
                            .collect();
                        (!judged.is_empty()).then(|| judged.iter().filter(|&&b| b).count())
                    };
                    let open_loop = paces_itself(&first.workload);
                    let nps: Vec<f64> = valid
                        .iter()
                        .filter_map(|r| r.tenants.iter().find(|t| t.name == first.name))
                        .filter_map(|t| t.np)
                        .collect();
                    TenantGroup {
                        name: first.name.clone(),
                        workload: first.workload.clone(),
                        device: first.device,
                        item: first.item.clone(),
                        open_loop,
                        kept_up: (open_loop && mode.concurrent() && !nps.is_empty())
                            .then(|| nps.iter().filter(|&&np| kept_up(np)).count()),
                        throughput_items_per_s: of(&|t| Some(t.throughput_items_per_s)),
                        np: of(&|t| t.np),
                        p50_ms: of(&|t| tail(t).map(|s| s.p50_ms)),
                        p99_ms: of(&|t| tail(t).map(|s| s.p99_ms)),
                        slo_attainment: of(&|t| t.slo.map(|s| s.attainment)),
                        slo_observed_ms: of(&|t| t.slo.map(|s| s.observed_ms)),
                        slo_met: slo_judged(&|s| s.met),
                        slo_judged: slo_judged(&|_| true),
                        failed_fraction: of(&|t| {
                            (t.steps > 0).then(|| t.failed as f64 / t.steps as f64)
                        })
                        .filter(|e| e.mean > 0.0),
                        energy_per_item_j: of(&|t| t.energy_per_item_j),
                    }
                })
                .collect();
            let sharing = |f: fn(&SharingFigures) -> f64| {
                let values: Vec<f64> = valid
                    .iter()
                    .filter_map(|r| r.sharing.as_ref())
                    .map(f)
                    .collect();
                Estimate::of(&values)
            };
            let windows: Vec<&MonitorSummary> = valid
                .iter()
                .flat_map(|r| r.gpu.iter().map(|w| &w.summary))
                .collect();
            let gpu = |f: fn(&MonitorSummary) -> Option<f64>| {
                let values: Vec<f64> = windows.iter().filter_map(|s| f(s)).collect();
                Estimate::of(&values)
            };
            let mut throttling_seen: Vec<String> = vec![];
            for reason in windows.iter().flat_map(|s| &s.throttling_seen) {
                if !throttling_seen.contains(reason) {
                    throttling_seen.push(reason.clone());
                }
            }
            let gains: Vec<f64> = valid.iter().filter_map(|r| r.energy_gain).collect();
            GroupAnalysis {
                util_gpu_pct: gpu(|s| s.mean_util_gpu_pct),
                power_w: gpu(|s| s.mean_power_w),
                memory_used_peak_bytes: gpu(|s| s.peak_memory_used_bytes.map(|b| b as f64)),
                energy_gain: Estimate::of(&gains),
                throttling_seen,
                n_runs: members.len(),
                n_valid,
                from_invalid,
                tenants,
                stp_closed_loop: Estimate::of(
                    &valid
                        .iter()
                        .filter_map(|r| r.stp_closed_loop)
                        .collect::<Vec<_>>(),
                ),
                stp: sharing(|s| s.stp),
                antt: sharing(|s| s.antt),
                fairness: sharing(|s| s.fairness),
                mode,
                config_idx,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{MonitorSeries, Sample};
    use crate::results::schema::{TenantRecord, WindowRecord};
    use crate::results::testing::{self, tenant};

    const SCENARIO: &str = r#"name = "energy"
[run]
duration_s = 1.0
repetitions = 1
min_samples = 10
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "a"
workload = "cpu.synthetic"
[[tenants]]
name = "b"
workload = "cpu.synthetic"
"#;

    /// A monitor series whose energy counter grows at `watts` from t = 0 to 10 s.
    fn series(watts: f64) -> MonitorSeries {
        MonitorSeries {
            samples: (0..=100)
                .map(|i| Sample {
                    t_s: i as f64 * 0.1,
                    util_gpu_pct: Some(50),
                    power_w: Some(watts),
                    energy_mj: Some((watts * i as f64 * 100.0) as u64),
                    ..Sample::default()
                })
                .collect(),
            ..MonitorSeries::default()
        }
    }

    fn run(
        mode: ModeSetting,
        tenants: Vec<TenantRecord>,
        windows: Vec<WindowRecord>,
        watts: f64,
    ) -> RunRecord {
        let mut run = testing::run(mode, 0, tenants);
        run.monitor = Some(series(watts));
        run.windows = windows;
        run
    }

    fn window(tenants: &[&str], start_s: f64) -> WindowRecord {
        WindowRecord {
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            start_s,
            end_s: start_s + 1.0,
        }
    }

    #[test]
    fn energy_per_item_alone_and_the_energy_gain_of_sharing() {
        let study = testing::study(
            SCENARIO,
            vec![
                // Alone, each tenant does 100 items in 1 s at 200 W: 2 J per item.
                run(
                    ModeSetting::Exclusive,
                    vec![tenant("a", 100), tenant("b", 100)],
                    vec![window(&["a"], 1.0), window(&["b"], 3.0)],
                    200.0,
                ),
                // Shared, each does 60 items in 1 s at 300 W: 300 J for work that alone
                // would have cost 2 x 60 x 2 J = 240 J.
                run(
                    ModeSetting::TimeSlicing,
                    vec![tenant("a", 60), tenant("b", 60)],
                    vec![window(&["a", "b"], 1.0)],
                    300.0,
                ),
            ],
        );
        let analysis = analyze(&study);
        let alone = &analysis.runs[0];
        for t in &alone.tenants {
            assert!((t.energy_per_item_j.unwrap() - 2.0).abs() < 1e-9, "{t:?}");
        }
        let shared = &analysis.runs[1];
        assert!((shared.gpu[0].summary.energy_j.unwrap() - 300.0).abs() < 1e-6);
        assert!((shared.energy_gain.unwrap() - 0.8).abs() < 1e-9);
        assert!((shared.sharing.unwrap().stp - 1.2).abs() < 1e-9);
        let group = &analysis.groups[1];
        assert_eq!(group.util_gpu_pct.unwrap().mean, 50.0);
        assert_eq!(group.power_w.unwrap().mean, 300.0);
    }

    #[test]
    fn identical_replicas_share_one_pooled_baseline_and_a_noisy_one_is_flagged() {
        let text = r#"name = "replicas"
[run]
duration_s = 1.0
repetitions = 1
min_samples = 10
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "r"
workload = "cpu.synthetic"
replicas = 2
"#;
        let study = testing::study(
            text,
            vec![
                // Alone the same work ran at 100 and 80 items/s: one baseline of 90.
                run(
                    ModeSetting::Exclusive,
                    vec![tenant("r#0", 100), tenant("r#1", 80)],
                    vec![window(&["r#0"], 1.0), window(&["r#1"], 3.0)],
                    200.0,
                ),
                run(
                    ModeSetting::TimeSlicing,
                    vec![tenant("r#0", 45), tenant("r#1", 45)],
                    vec![window(&["r#0", "r#1"], 1.0)],
                    300.0,
                ),
            ],
        );
        let analysis = analyze(&study);
        let [baseline] = analysis.baselines.as_slice() else {
            panic!("{:?}", analysis.baselines)
        };
        assert_eq!((baseline.tenant.as_str(), baseline.n_replicas), ("r", 2));
        assert!((baseline.throughput_items_per_s.mean - 90.0).abs() < 1e-9);
        assert_eq!(baseline.throughput_items_per_s.n, 2);
        assert_eq!(baseline.util_gpu_pct.unwrap().mean, 50.0);
        // Same throughput shared, so the same NP for the same work.
        let np: Vec<f64> = analysis.runs[1]
            .tenants
            .iter()
            .map(|t| t.np.unwrap())
            .collect();
        assert!(
            (np[0] - 0.5).abs() < 1e-9 && (np[1] - 0.5).abs() < 1e-9,
            "{np:?}"
        );
        assert!((analysis.runs[1].sharing.unwrap().stp - 1.0).abs() < 1e-9);
        assert_eq!(
            baseline.host_bound.as_deref(),
            Some(
                "host-bound: sharing gains here include CPU overlap (alone it varied by 15.7% \
                 (CV over 2 measurements), beyond the 5% goal; alone it kept the GPU busy 50% \
                 of the time (under 80%))"
            )
        );
    }

    #[test]
    fn failed_requests_and_slo_verdicts_reach_the_groups() {
        let analysis = analyze(&testing::serving_study());
        let shared = &analysis.runs[1].tenants[0];
        assert_eq!((shared.steps, shared.items, shared.failed), (200, 170, 30));
        assert!(!shared.slo.unwrap().met);
        let alone = &analysis.groups[0].tenants[0];
        assert_eq!((alone.slo_met, alone.slo_judged), (Some(2), Some(2)));
        assert_eq!(alone.failed_fraction, None);
        let together = &analysis.groups[1].tenants[0];
        assert_eq!((together.slo_met, together.slo_judged), (Some(1), Some(2)));
        assert!((together.failed_fraction.unwrap().mean - 0.075).abs() < 1e-12);
    }

    #[test]
    fn a_group_without_valid_runs_shows_what_its_invalid_runs_measured() {
        let mut study = testing::serving_study();
        // Too few samples in every shared run: 5 steps against min_samples = 10.
        for run in study.runs.iter_mut().filter(|r| r.mode.concurrent()) {
            *run = testing::run(run.mode.clone(), run.repetition, vec![tenant("api", 5)]);
        }
        let analysis = analyze(&study);
        let shared = &analysis.groups[1];
        assert_eq!((shared.n_valid, shared.from_invalid), (0, true));
        let np = shared.tenants[0].np.unwrap();
        assert!((np.mean - 5.0 / 200.0).abs() < 1e-9, "{np:?}");
        assert!(!analysis.groups[0].from_invalid);
    }

    #[test]
    fn open_loop_tenants_are_marked_and_stp_is_stated_without_them() {
        let mut study = testing::serving_study();
        for run in &mut study.runs {
            let mut closed = tenant("train", if run.mode.concurrent() { 50 } else { 100 });
            closed.workload = "cpu.synthetic".into();
            run.tenants[0].workload = "serve.delay".into();
            run.tenants.push(closed);
        }
        study
            .scenario_source
            .push_str("[[tenants]]\nname = \"train\"\nworkload = \"cpu.synthetic\"\n");
        study = testing::study(&study.scenario_source.clone(), study.runs);
        let analysis = analyze(&study);
        let shared = &analysis.groups[1];
        let api = &shared.tenants[0];
        assert!(api.open_loop);
        // The repetition with 15% failed requests fell behind (NP 0.85), the other kept up.
        assert_eq!(api.kept_up, Some(1));
        assert!(!shared.tenants[1].open_loop);
        assert!((shared.stp_closed_loop.unwrap().mean - 0.5).abs() < 1e-9);
        assert!((shared.stp.unwrap().mean - (0.5 + 0.925)).abs() < 1e-9);
        assert_eq!(analysis.groups[0].tenants[0].kept_up, None);
    }
}
