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

    /// A human description of the plan for `--dry-run`: the configurations and modes it
    /// runs (all of them, unless `--shard` or `--modes` kept only some).
    pub fn describe(&self, scenario: &Scenario) -> String {
        let mut out = String::new();
        let settings = &scenario.run;
        let run_configs: std::collections::BTreeSet<usize> =
            self.runs.iter().map(|r| r.config_idx).collect();
        let run_modes: std::collections::BTreeSet<String> =
            self.runs.iter().map(|r| r.mode.to_string()).collect();
        out.push_str(&format!(
            "scenario `{}`: {} run(s) = {} configuration(s) x {} mode(s) x {} repetition(s)\n",
            scenario.name,
            self.runs.len(),
            run_configs.len(),
            run_modes.len(),
            settings.repetitions
        ));
        out.push_str(&format!(
            "each run: warm-up {} s, measured window {} s; exclusive runs tenants one after another\n",
            settings.warmup_s, settings.duration_s
        ));
        for config in self
            .configs
            .iter()
            .filter(|c| run_configs.contains(&c.config_idx))
        {
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

/// The name a replica-count axis has among a tenant's parameter axes; no workload
/// parameter can be called so, since it is a field of the tenant itself.
const REPLICAS_AXIS: &str = "replicas";

fn expand_configs(scenario: &Scenario) -> Vec<TenantConfig> {
    let replica_values: Vec<Vec<ParamValue>> = scenario
        .tenants
        .iter()
        .map(|t| {
            t.replicas_sweep
                .iter()
                .map(|&n| ParamValue::Int(i64::from(n)))
                .collect()
        })
        .collect();
    // Each axis is (tenant index, parameter name, its values); single values are not axes.
    // A swept replica count is an axis too, before the tenant's parameters.
    let axes: Vec<(usize, &str, &[ParamValue])> = scenario
        .tenants
        .iter()
        .enumerate()
        .flat_map(|(idx, t)| {
            let replicas = (replica_values[idx].len() > 1)
                .then(|| (idx, REPLICAS_AXIS, replica_values[idx].as_slice()));
            replicas.into_iter().chain(
                t.params
                    .iter()
                    .filter(|(_, values)| values.len() > 1)
                    .map(move |(name, values)| (idx, name.as_str(), values.as_slice())),
            )
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
                let n_replicas = match chosen.get(&(tenant_idx, REPLICAS_AXIS)) {
                    Some(ParamValue::Int(n)) => *n as u32,
                    _ => tenant.replicas,
                };
                for replica_idx in 0..n_replicas {
                    let name = if n_replicas > 1 {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_replica_list_is_a_sweep_axis_named_like_a_parameter() {
        let text = r#"name = "scale"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "infer"
workload = "cpu.synthetic"
replicas = [1, 2, 4]
params = { step_ms = [1.0, 2.0] }
[[tenants]]
name = "other"
workload = "cpu.synthetic"
"#;
        let scenario = crate::scenario::parse(Path::new("s.toml"), text).unwrap();
        assert_eq!(scenario.tenants[0].replicas, 1);
        assert_eq!(scenario.tenants[0].replicas_sweep, vec![1, 2, 4]);
        let plan = Plan::expand(&scenario);
        let shape: Vec<(String, Vec<String>)> = plan
            .configs
            .iter()
            .map(|c| {
                (
                    c.label.clone(),
                    c.tenants.iter().map(|t| t.name.clone()).collect(),
                )
            })
            .collect();
        let names = |n: usize| -> Vec<String> {
            let mut v: Vec<String> = if n == 1 {
                vec!["infer".into()]
            } else {
                (0..n).map(|i| format!("infer#{i}")).collect()
            };
            v.push("other".into());
            v
        };
        assert_eq!(
            shape,
            vec![
                ("infer.replicas=1 infer.step_ms=1".to_string(), names(1)),
                ("infer.replicas=1 infer.step_ms=2".to_string(), names(1)),
                ("infer.replicas=2 infer.step_ms=1".to_string(), names(2)),
                ("infer.replicas=2 infer.step_ms=2".to_string(), names(2)),
                ("infer.replicas=4 infer.step_ms=1".to_string(), names(4)),
                ("infer.replicas=4 infer.step_ms=2".to_string(), names(4)),
            ]
        );
        // The replica count is not a workload parameter.
        assert!(!plan.configs[4].tenants[3].params.0.contains_key("replicas"));
        assert_eq!(plan.runs.len(), 6 * 2 * 3);
    }

    #[test]
    fn replicas_that_are_neither_a_count_nor_a_list_are_a_located_format_error() {
        let text = "name = \"s\"\n[[modes]]\nmode = \"mps\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nreplicas = \"two\"\n";
        let err = crate::scenario::parse(Path::new("s.toml"), text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.toml:7:12: invalid type: string \"two\", expected an integer or a list of integers"
        );
    }

    #[test]
    fn a_bad_replica_count_in_a_list_is_located() {
        let text = "name = \"s\"\n[[modes]]\nmode = \"mps\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nreplicas = [1, 65]\n";
        let err = crate::scenario::parse(Path::new("s.toml"), text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.toml:7:12: `tenants[0].replicas`: must be an integer from 1 to 64, got 65"
        );
    }
}
