//! From a study's raw records to the figures reports show: per-run tenant figures,
//! normalized progress against the exclusive baseline, sharing figures, verdicts, and
//! estimates across repetitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sharing::{normalized_progress, SharingFigures};
use super::stats::Estimate;
use super::throughput::TenantFigures;
use super::validity::{check_run, FailedCheck, Verdict};
use crate::report::schema::{RunStatus, Study};
use crate::sharing::ModeSetting;
use crate::workload::Device;

/// Everything computed from a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub runs: Vec<RunAnalysis>,
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
    pub verdict: Verdict,
}

/// A mode and configuration across repetitions, from its VALID runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAnalysis {
    pub mode: ModeSetting,
    pub config_idx: usize,
    pub n_runs: usize,
    pub n_valid: usize,
    pub tenants: Vec<TenantGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub antt: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Estimate>,
}

/// One tenant across a group's VALID runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantGroup {
    pub name: String,
    pub workload: String,
    pub device: Device,
    pub item: String,
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
            let failed = check_run(run, &tenants, settings);
            RunAnalysis {
                id: run.id.clone(),
                mode: run.mode.clone(),
                config_idx: run.config_idx,
                repetition: run.repetition,
                status: run.status,
                tenants,
                sharing: None,
                verdict: Verdict::from_checks(failed),
            }
        })
        .collect();

    let baseline = baselines(&runs);
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
    Analysis { runs, groups }
}

/// Each tenant's mean throughput alone, per configuration, from VALID exclusive runs.
fn baselines(runs: &[RunAnalysis]) -> BTreeMap<(usize, String), f64> {
    let mut values: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    for run in runs
        .iter()
        .filter(|r| r.mode == ModeSetting::Exclusive && r.verdict.valid)
    {
        for t in &run.tenants {
            values
                .entry((run.config_idx, t.name.clone()))
                .or_default()
                .push(t.throughput_items_per_s);
        }
    }
    values
        .into_iter()
        .map(|(key, v)| (key, super::stats::mean(&v)))
        .collect()
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
            let valid: Vec<&RunAnalysis> = members
                .iter()
                .copied()
                .filter(|r| r.verdict.valid)
                .collect();
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
                    TenantGroup {
                        name: first.name.clone(),
                        workload: first.workload.clone(),
                        device: first.device,
                        item: first.item.clone(),
                        throughput_items_per_s: of(&|t| Some(t.throughput_items_per_s)),
                        np: of(&|t| t.np),
                        p50_ms: of(&|t| tail(t).map(|s| s.p50_ms)),
                        p99_ms: of(&|t| tail(t).map(|s| s.p99_ms)),
                        slo_attainment: of(&|t| t.slo.map(|s| s.attainment)),
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
            GroupAnalysis {
                n_runs: members.len(),
                n_valid: valid.len(),
                tenants,
                stp: sharing(|s| s.stp),
                antt: sharing(|s| s.antt),
                fairness: sharing(|s| s.fairness),
                mode,
                config_idx,
            }
        })
        .collect()
}
