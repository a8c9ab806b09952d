//! Exclusive baselines: each tenant's throughput alone, the denominator of every NP.
//!
//! Identical replicas of a tenant are one configuration of the same work, so their
//! exclusive measurements are pooled into one baseline (every replica times every VALID
//! repetition) with its 95% bootstrap CI, instead of one noisy baseline per replica: with
//! per-replica baselines, replicas that get the same throughput shared get different NPs
//! from the noise of their solo runs alone. Each baseline carries its spread and the GPU
//! utilization its tenant reached alone, and is flagged host-bound when either says the
//! tenant's rate is set by its host side rather than the GPU.

use serde::{Deserialize, Serialize};

use super::analysis::RunAnalysis;
use super::stats::{mean, Estimate};
use crate::results::schema::Study;
use crate::sharing::ModeSetting;
use crate::workload::Device;

/// The most a baseline may vary (coefficient of variation) before it is flagged.
pub const BASELINE_CV_GOAL: f64 = 0.05;
/// The GPU utilization alone below which a throughput tenant is flagged, in percent.
pub const HOST_BOUND_UTIL_PCT: f64 = 80.0;
/// The flag's text, followed by the reasons.
pub const HOST_BOUND: &str = "host-bound: sharing gains here include CPU overlap";

/// One tenant's pooled exclusive baseline in one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub config_idx: usize,
    /// The tenant's name as the scenario gives it (no `#replica` suffix).
    pub tenant: String,
    /// Index of the tenant in the scenario.
    pub tenant_idx: usize,
    pub workload: String,
    pub device: Device,
    /// The unit of the throughput.
    pub item: String,
    /// Replicas measured alone.
    pub n_replicas: usize,
    /// Throughput alone over every replica and VALID repetition, in items per second.
    pub throughput_items_per_s: Estimate,
    /// Mean GPU utilization while the tenant ran alone, over its windows, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_gpu_pct: Option<Estimate>,
    /// GPU energy per item alone, mean over its windows, in joules per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_per_item_j: Option<f64>,
    /// Why the tenant looks host-bound alone ([`HOST_BOUND`] and its reasons), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_bound: Option<String>,
}

/// The scenario index of the tenant instance `name` in configuration `config_idx`.
pub fn tenant_idx(study: &Study, config_idx: usize, name: &str) -> Option<usize> {
    study
        .plan
        .configs
        .get(config_idx)?
        .tenants
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.tenant_idx)
}

/// Workloads whose rate their parameters set (a launch interval, a request rate, think
/// times): idle GPU time alone is their design, not a host bottleneck.
fn rate_fixed(workload: &str) -> bool {
    workload == "probe.latency"
        || workload == "interactive.notebook"
        || workload.starts_with("serve.")
}

/// What one baseline pools: throughputs, GPU utilizations and joules per item alone,
/// and the replicas they came from.
type Measurements = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<String>);

/// Pools the VALID exclusive runs of `runs` (analyzed from `study`) into one baseline
/// per configuration and tenant, in configuration then tenant order.
pub fn pool(study: &Study, runs: &[RunAnalysis]) -> Vec<Baseline> {
    let mut out: Vec<Baseline> = vec![];
    let mut values: Vec<Measurements> = vec![];
    for run in runs
        .iter()
        .filter(|r| r.mode == ModeSetting::Exclusive && r.verdict.valid)
    {
        for t in &run.tenants {
            let Some(tenant_idx) = tenant_idx(study, run.config_idx, &t.name) else {
                continue;
            };
            let slot = match out
                .iter()
                .position(|b| b.config_idx == run.config_idx && b.tenant_idx == tenant_idx)
            {
                Some(slot) => slot,
                None => {
                    let tenant = study
                        .scenario
                        .tenants
                        .get(tenant_idx)
                        .map_or_else(|| t.name.clone(), |s| s.name.clone());
                    out.push(Baseline {
                        config_idx: run.config_idx,
                        tenant,
                        tenant_idx,
                        workload: t.workload.clone(),
                        device: t.device,
                        item: t.item.clone(),
                        n_replicas: 0,
                        throughput_items_per_s: Estimate {
                            mean: f64::NAN,
                            ci_low: f64::NAN,
                            ci_high: f64::NAN,
                            cv: 0.0,
                            n: 0,
                        },
                        util_gpu_pct: None,
                        energy_per_item_j: None,
                        host_bound: None,
                    });
                    values.push(Default::default());
                    out.len() - 1
                }
            };
            let (throughput, util, energy, replicas) = &mut values[slot];
            throughput.push(t.throughput_items_per_s);
            if let Some(j) = t.energy_per_item_j {
                energy.push(j);
            }
            if !replicas.contains(&t.name) {
                replicas.push(t.name.clone());
            }
            let alone = run
                .gpu
                .iter()
                .find(|w| w.tenants.len() == 1 && w.tenants[0] == t.name);
            if let Some(pct) = alone.and_then(|w| w.summary.mean_util_gpu_pct) {
                util.push(pct);
            }
        }
    }
    for (baseline, (throughput, util, energy, replicas)) in out.iter_mut().zip(values) {
        if let Some(estimate) = Estimate::of(&throughput) {
            baseline.throughput_items_per_s = estimate;
        }
        baseline.n_replicas = replicas.len();
        baseline.util_gpu_pct = Estimate::of(&util);
        baseline.energy_per_item_j = (!energy.is_empty()).then(|| mean(&energy));
        baseline.host_bound = host_bound(baseline);
    }
    out.sort_by_key(|b| (b.config_idx, b.tenant_idx));
    out
}

/// The host-bound flag with its reasons, for a GPU tenant that runs as fast as it can.
fn host_bound(baseline: &Baseline) -> Option<String> {
    if baseline.device != Device::Gpu || rate_fixed(&baseline.workload) {
        return None;
    }
    let mut reasons = vec![];
    let spread = &baseline.throughput_items_per_s;
    if spread.n >= 2 && spread.cv > BASELINE_CV_GOAL {
        reasons.push(format!(
            "alone it varied by {:.1}% (CV over {} measurements), beyond the {:.0}% goal",
            spread.cv * 100.0,
            spread.n,
            BASELINE_CV_GOAL * 100.0
        ));
    }
    if let Some(util) = &baseline.util_gpu_pct {
        if util.mean < HOST_BOUND_UTIL_PCT {
            reasons.push(format!(
                "alone it kept the GPU busy {:.0}% of the time (under {:.0}%)",
                util.mean, HOST_BOUND_UTIL_PCT
            ));
        }
    }
    (!reasons.is_empty()).then(|| format!("{HOST_BOUND} ({})", reasons.join("; ")))
}
