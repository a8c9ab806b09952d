//! Sweep expansion: a scenario becomes the list of runs to execute.
//!
//! Tenant parameters given as lists are axes; their product gives the tenant
//! configurations. Every configuration runs under every mode (mode sweeps were expanded
//! during validation), `repetitions` times. Repetitions are the outer loop so slow drift
//! of the machine (thermal, other load) spreads over all modes instead of biasing one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Scenario, Slo};
use crate::sharing::{ModeSetting, TenantSharing};
use crate::workload::{ParamValue, Params};

/// Every run of a study, in execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub configs: Vec<TenantConfig>,
    pub runs: Vec<PlannedRun>,
}

/// One point of the tenant parameter sweep: the tenant instances that run together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantConfig {
    pub config_idx: usize,
    /// The swept values that define this point, `tenant.param=value`; empty without sweeps.
    pub label: String,
    pub tenants: Vec<TenantInstance>,
}

/// One worker: a tenant replica with concrete parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantInstance {
    /// The tenant name, with `#<replica>` when the tenant has several replicas.
    pub name: String,
    pub tenant_idx: usize,
    pub replica_idx: u32,
    pub workload: String,
    pub params: Params,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    #[serde(default)]
    pub sharing: TenantSharing,
}

/// One run: a tenant configuration under one mode, one repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Reads as a path: `mps(atp=50)/c1/r2`.
    pub id: String,
    pub config_idx: usize,
    pub mode: ModeSetting,
    pub repetition: u32,
}

impl Plan {
    /// Expands the scenario's sweep.
    pub fn expand(scenario: &Scenario) -> Plan {
        let configs = expand_configs(scenario);
        let mut runs = vec![];
        for repetition in 0..scenario.run.repetitions {
            for config in &configs {
                for mode in &scenario.modes {
                    runs.push(PlannedRun {
                        id: format!("{mode}/c{}/r{repetition}", config.config_idx),
                        config_idx: config.config_idx,
                        mode: mode.clone(),
                        repetition,
                    });
                }
            }
        }
        Plan { configs, runs }
    }

    pub fn config(&self, run: &PlannedRun) -> &TenantConfig {
        &self.configs[run.config_idx]
    }

    /// The seed a tenant instance uses in a run: distinct per tenant, replica and
    /// repetition, and the same every time the scenario is run.
    pub fn seed(base: u64, instance: &TenantInstance, repetition: u32) -> u64 {
        // SplitMix64's finalizer spreads the small indices over all 64 bits.
        let mut z = base
            ^ ((instance.tenant_idx as u64) << 40)
            ^ (u64::from(instance.replica_idx) << 20)
            ^ u64::from(repetition);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A human description of the plan for `--dry-run`.
    pub fn describe(&self, scenario: &Scenario) -> String {
        let mut out = String::new();
        let settings = &scenario.run;
        out.push_str(&format!(
            "scenario `{}`: {} run(s) = {} configuration(s) x {} mode(s) x {} repetition(s)\n",
            scenario.name,
            self.runs.len(),
            self.configs.len(),
            scenario.modes.len(),
            settings.repetitions
        ));
        out.push_str(&format!(
            "each run: warm-up {} s, measured window {} s; exclusive runs tenants one after another\n",
            settings.warmup_s, settings.duration_s
        ));
        for config in &self.configs {
            let label = if config.label.is_empty() {
                "(no sweep)"
            } else {
                &config.label
            };
            out.push_str(&format!("configuration c{}: {label}\n", config.config_idx));
            for t in &config.tenants {
                let params: Vec<String> =
                    t.params.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!(
                    "  {:<16} {:<24} {}\n",
                    t.name,
                    t.workload,
                    params.join(" ")
                ));
            }
        }
        out.push_str("runs:\n");
        for run in &self.runs {
            out.push_str(&format!("  {}\n", run.id));
        }
        out
    }
}

fn expand_configs(scenario: &Scenario) -> Vec<TenantConfig> {
    // Each axis is (tenant index, parameter name, its values); single values are not axes.
    let axes: Vec<(usize, &str, &[ParamValue])> = scenario
        .tenants
        .iter()
        .enumerate()
        .flat_map(|(idx, t)| {
            t.params
                .iter()
                .filter(|(_, values)| values.len() > 1)
                .map(move |(name, values)| (idx, name.as_str(), values.as_slice()))
        })
        .collect();
    let n_configs: usize = axes.iter().map(|(_, _, v)| v.len()).product();
    (0..n_configs)
        .map(|config_idx| {
            // Mixed-radix decoding of config_idx picks one value per axis; the last axis
            // varies fastest.
            let mut rest = config_idx;
            let mut chosen: BTreeMap<(usize, &str), &ParamValue> = BTreeMap::new();
            for (tenant_idx, name, values) in axes.iter().rev() {
                chosen.insert((*tenant_idx, name), &values[rest % values.len()]);
                rest /= values.len();
            }
            let label = axes
                .iter()
                .map(|(t, name, _)| {
                    format!(
                        "{}.{name}={}",
                        scenario.tenants[*t].name,
                        chosen[&(*t, *name)]
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            let mut tenants = vec![];
            for (tenant_idx, tenant) in scenario.tenants.iter().enumerate() {
                let params = Params(
                    tenant
                        .params
                        .iter()
                        .map(|(name, values)| {
                            let value = chosen
                                .get(&(tenant_idx, name.as_str()))
                                .copied()
                                .unwrap_or(&values[0]);
                            (name.clone(), value.clone())
                        })
                        .collect(),
                );
                for replica_idx in 0..tenant.replicas {
                    let name = if tenant.replicas > 1 {
                        format!("{}#{replica_idx}", tenant.name)
                    } else {
                        tenant.name.clone()
                    };
                    tenants.push(TenantInstance {
                        name,
                        tenant_idx,
                        replica_idx,
                        workload: tenant.workload.clone(),
                        params: params.clone(),
                        slo: tenant.slo,
                        sharing: tenant.sharing.clone(),
                    });
                }
            }
            TenantConfig {
                config_idx,
                label,
                tenants,
            }
        })
        .collect()
}
