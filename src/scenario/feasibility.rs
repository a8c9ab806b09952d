//! Sample-count feasibility: before any GPU time is spent, how many samples each tenant
//! can complete in a run's window, and whether that reaches `run.min_samples` and its SLO
//! percentile's minimum (the rule of `metrics::latency::min_samples_for_percentile`).
//!
//! Where a tenant's parameters fix its rate (`probe.latency`'s interval, a serving
//! tenant's request rate, a notebook's think and cell times, `cpu.synthetic`'s step) the
//! count follows from the parameters. Model tenants run as fast as the GPU lets them, so
//! their rate comes from a previous study's recorded throughput when one is given
//! ([`Calibration`]); without it they are not judged. This file computes; it reads no
//! file and starts nothing (the caller builds the calibration from a study).

use std::collections::BTreeMap;

use super::model::Scenario;
use super::plan::{Plan, TenantInstance};
use crate::metrics::min_samples_for_percentile;
use crate::sharing::ModeSetting;
use crate::workload::{self, Params};

/// Recorded step rates of model tenants from a previous study, keyed by workload and
/// parameters (as `Params` prints them); each entry holds the rate alone and, where the
/// study ran it, under each shared mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Where the rates come from, for messages (a results directory).
    pub source: String,
    rates: BTreeMap<(String, String), BTreeMap<String, f64>>,
}

impl Calibration {
    pub fn new(source: impl Into<String>) -> Self {
        Calibration {
            source: source.into(),
            rates: BTreeMap::new(),
        }
    }

    /// Records that `workload` with `params` completed `steps_per_s` steps per second
    /// under `mode`; several records of one key keep the slowest, so an estimate errs
    /// towards warning.
    pub fn record(
        &mut self,
        workload: &str,
        params: &Params,
        mode: &ModeSetting,
        steps_per_s: f64,
    ) {
        if !(steps_per_s.is_finite() && steps_per_s > 0.0) {
            return;
        }
        let by_mode = self
            .rates
            .entry((workload.to_string(), params_key(params)))
            .or_default();
        let rate = by_mode.entry(mode.to_string()).or_insert(steps_per_s);
        *rate = rate.min(steps_per_s);
    }

    /// The recorded rate under `mode`, or alone when the study did not run that mode.
    fn rate(&self, workload: &str, params: &Params, mode: &ModeSetting) -> Option<(f64, String)> {
        let by_mode = self
            .rates
            .get(&(workload.to_string(), params_key(params)))?;
        let mode_name = mode.to_string();
        if let Some(rate) = by_mode.get(&mode_name) {
            return Some((*rate, mode_name));
        }
        let alone = ModeSetting::Exclusive.to_string();
        by_mode.get(&alone).map(|rate| (*rate, alone))
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

fn params_key(params: &Params) -> String {
    params
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A tenant that cannot reach the samples its runs need.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall {
    /// The tenant (without its replica suffix).
    pub tenant: String,
    pub workload: String,
    /// The configuration, as `c<idx>` with its sweep label.
    pub config: String,
    /// The mode the estimate is for (`exclusive` for rates fixed by parameters).
    pub mode: String,
    /// Samples the tenant can complete in one window, at most (or about, when estimated).
    pub expected_samples: f64,
    /// Samples it needs.
    pub needed: u64,
    /// What needs them: `run.min_samples = 50` or `its SLO's P99`.
    pub needed_for: String,
    /// Where the rate comes from: the parameters, or the calibration study.
    pub rate_source: String,
    /// Whether the rate is fixed by parameters (an upper bound) or estimated.
    pub bound: bool,
    /// The change that makes the plan feasible.
    pub fix: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tenant `{}` ({}, {}, {}): {} {:.0} samples in the window ({}), fewer than the {} {} needs; {}",
            self.tenant,
            self.workload,
            self.config,
            self.mode,
            if self.bound { "at most" } else { "about" },
            self.expected_samples.floor(),
            self.rate_source,
            self.needed,
            self.needed_for,
            self.fix
        )
    }
}

/// A rate fixed by a tenant's parameters: samples per second, what fixes it, and how to
/// change the parameter to reach `needed_per_s`.
struct FixedRate {
    per_s: f64,
    source: String,
    fix_param: Box<dyn Fn(f64) -> String>,
}

/// A parameter's value, or its registered default.
fn param(instance: &TenantInstance, name: &str) -> f64 {
    let default = workload::find(&instance.workload)
        .ok()
        .and_then(|info| info.params.iter().find(|p| p.name == name))
        .and_then(|p| p.default.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    instance.params.f64_or(name, default)
}

fn fixed_rate(instance: &TenantInstance) -> Option<FixedRate> {
    let workload = instance.workload.as_str();
    let rate = if workload == "probe.latency" {
        let interval_us = param(instance, "interval_us");
        FixedRate {
            per_s: 1e6 / interval_us,
            source: format!("interval_us = {interval_us}: one launch per {interval_us} µs"),
            fix_param: Box::new(|per_s| {
                format!("or set interval_us to at most {:.0}", (1e6 / per_s).floor())
            }),
        }
    } else if workload.starts_with("serve.") {
        let rate = param(instance, "rate");
        FixedRate {
            per_s: rate,
            source: format!("rate = {rate} requests/s"),
            fix_param: Box::new(|per_s| format!("or raise rate to at least {:.0}", per_s.ceil())),
        }
    } else if workload == "interactive.notebook" {
        let think_ms = param(instance, "think_ms");
        let cell_ms = param(instance, "cell_ms");
        let cells = instance.params.i64_or("cells_per_burst", 1).max(1) as f64;
        let burst_ms = cells * cell_ms;
        FixedRate {
            per_s: 1e3 / (think_ms + burst_ms),
            source: format!(
                "one burst per think_ms + cells_per_burst x cell_ms = {think_ms} + {cells} x {cell_ms} ms"
            ),
            fix_param: Box::new(move |per_s| {
                let think = (1e3 / per_s - burst_ms).floor();
                if think > 0.0 {
                    format!("or shorten think_ms to at most {think:.0}")
                } else {
                    "or shorten think_ms and cell_ms".to_string()
                }
            }),
        }
    } else if workload == "cpu.synthetic" {
        let step_ms = param(instance, "step_ms");
        FixedRate {
            per_s: 1e3 / step_ms,
            source: format!("step_ms = {step_ms}"),
            fix_param: Box::new(|per_s| format!("or lower step_ms to at most {:.3}", 1e3 / per_s)),
        }
    } else {
        return None;
    };
    (rate.per_s.is_finite() && rate.per_s > 0.0).then_some(rate)
}

/// Every tenant of every configuration that cannot reach its samples, at most one entry
/// per tenant, configuration and mode. Rates fixed by parameters are judged for every
/// configuration; model tenants only with a calibration that knows them.
pub fn check(
    scenario: &Scenario,
    plan: &Plan,
    calibration: Option<&Calibration>,
) -> Vec<Shortfall> {
    let settings = &scenario.run;
    let duration_s = settings.duration_s;
    let mut out = vec![];
    for config in &plan.configs {
        let label = if config.label.is_empty() {
            format!("c{}", config.config_idx)
        } else {
            format!("c{} {}", config.config_idx, config.label)
        };
        for instance in config.tenants.iter().filter(|t| t.replica_idx == 0) {
            let tenant = &scenario.tenants[instance.tenant_idx];
            let (needed, needed_for) = match &instance.slo {
                Some(slo) => {
                    let for_slo = min_samples_for_percentile(slo.percentile);
                    if for_slo >= settings.min_samples {
                        (for_slo, format!("its SLO's P{}", slo.percentile))
                    } else {
                        (
                            settings.min_samples,
                            format!("run.min_samples = {}", settings.min_samples),
                        )
                    }
                }
                None => (
                    settings.min_samples,
                    format!("run.min_samples = {}", settings.min_samples),
                ),
            };
            let lengthen = |per_s: f64| {
                format!(
                    "lengthen run.duration_s (or --duration) to at least {} s",
                    format_seconds(needed as f64 / per_s)
                )
            };
            if let Some(rate) = fixed_rate(instance) {
                let expected = rate.per_s * duration_s;
                if expected < needed as f64 {
                    out.push(Shortfall {
                        tenant: tenant.name.clone(),
                        workload: instance.workload.clone(),
                        config: label.clone(),
                        mode: "any mode".into(),
                        expected_samples: expected,
                        needed,
                        needed_for: needed_for.clone(),
                        rate_source: format!("{}, in {duration_s} s", rate.source),
                        bound: instance.workload != "interactive.notebook",
                        fix: format!(
                            "{} {}",
                            lengthen(rate.per_s),
                            (rate.fix_param)(needed as f64 / duration_s)
                        ),
                    });
                }
                continue;
            }
            let Some(calibration) = calibration else {
                continue;
            };
            for mode in &scenario.modes {
                let Some((per_s, measured_in)) =
                    calibration.rate(&instance.workload, &instance.params, mode)
                else {
                    continue;
                };
                let expected = per_s * duration_s;
                if expected < needed as f64 {
                    out.push(Shortfall {
                        tenant: tenant.name.clone(),
                        workload: instance.workload.clone(),
                        config: label.clone(),
                        mode: mode.to_string(),
                        expected_samples: expected,
                        needed,
                        needed_for: needed_for.clone(),
                        rate_source: format!(
                            "{per_s:.3} steps/s as {} measured it {measured_in}, in {duration_s} s",
                            calibration.source
                        ),
                        bound: false,
                        fix: format!("{}, or use smaller steps", lengthen(per_s)),
                    });
                }
            }
        }
    }
    out
}

/// Seconds rounded up to a tidy figure for a fix: whole seconds above 10, tenths below.
fn format_seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{:.0}", s.ceil())
    } else {
        format!("{:.1}", (s * 10.0).ceil() / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::workload::ParamValue;

    fn scenario(text: &str) -> (Scenario, Plan) {
        let scenario = crate::scenario::parse(Path::new("t.toml"), text).unwrap();
        let plan = Plan::expand(&scenario);
        (scenario, plan)
    }

    const PROBE_100HZ: &str = r#"name = "p"
[run]
duration_s = 6.0
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "latency"
workload = "probe.latency"
params = { interval_us = 10000 }
slo = { percentile = 99.0, target_ms = 5.0 }
[[tenants]]
name = "compute"
workload = "probe.compute"
"#;

    #[test]
    fn a_100_hz_probe_in_a_6_s_window_cannot_state_its_p99() {
        let (scenario, plan) = scenario(PROBE_100HZ);
        let found = check(&scenario, &plan, None);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].to_string(),
            "tenant `latency` (probe.latency, c0, any mode): at most 600 samples in the window \
             (interval_us = 10000: one launch per 10000 µs, in 6 s), fewer than the 1000 its \
             SLO's P99 needs; lengthen run.duration_s (or --duration) to at least 10 s or set \
             interval_us to at most 6000"
        );
    }

    #[test]
    fn a_long_enough_window_passes() {
        let (scenario, plan) = scenario(&PROBE_100HZ.replace("6.0", "10.0"));
        assert_eq!(check(&scenario, &plan, None), vec![]);
    }

    #[test]
    fn each_swept_interval_is_judged_on_its_own() {
        let text = PROBE_100HZ.replace("interval_us = 10000", "interval_us = [1000, 10000]");
        let (scenario, plan) = scenario(&text);
        let found = check(&scenario, &plan, None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].config, "c1 latency.interval_us=10000");
    }

    #[test]
    fn serve_notebook_and_cpu_rates_follow_their_parameters() {
        let text = r#"name = "p"
[run]
duration_s = 2.0
min_samples = 100
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "web"
workload = "serve.delay"
params = { rate = 20 }
[[tenants]]
name = "nb"
workload = "interactive.notebook"
params = { think_ms = 100, cell_ms = 50, cells_per_burst = 2, device = "cpu" }
[[tenants]]
name = "spin"
workload = "cpu.synthetic"
params = { step_ms = 40 }
"#;
        let (scenario, plan) = scenario(text);
        let found: Vec<String> = check(&scenario, &plan, None)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            found,
            vec![
                "tenant `web` (serve.delay, c0, any mode): at most 40 samples in the window \
                 (rate = 20 requests/s, in 2 s), fewer than the 100 run.min_samples = 100 \
                 needs; lengthen run.duration_s (or --duration) to at least 5.0 s or raise \
                 rate to at least 50",
                "tenant `nb` (interactive.notebook, c0, any mode): about 10 samples in the \
                 window (one burst per think_ms + cells_per_burst x cell_ms = 100 + 2 x 50 ms, \
                 in 2 s), fewer than the 100 run.min_samples = 100 needs; lengthen \
                 run.duration_s (or --duration) to at least 20 s or shorten think_ms and cell_ms",
                "tenant `spin` (cpu.synthetic, c0, any mode): at most 50 samples in the window \
                 (step_ms = 40, in 2 s), fewer than the 100 run.min_samples = 100 needs; \
                 lengthen run.duration_s (or --duration) to at least 4.0 s or lower step_ms \
                 to at most 20.000",
            ]
        );
    }

    #[test]
    fn model_tenants_are_judged_from_a_calibration_per_mode() {
        let text = r#"name = "p"
[run]
duration_s = 5.0
min_samples = 100
[[modes]]
mode = "time-slicing"
[[modes]]
mode = "mps"
[[tenants]]
name = "train"
workload = "train.resnet50"
params = { batch_size = 64 }
"#;
        let (scenario, plan) = scenario(text);
        assert_eq!(check(&scenario, &plan, None), vec![]);
        let params = Params::from_pairs(&[("batch_size", ParamValue::Int(64))]);
        let mut calibration = Calibration::new("results/old");
        calibration.record("train.resnet50", &params, &ModeSetting::Exclusive, 30.0);
        calibration.record("train.resnet50", &params, &ModeSetting::TimeSlicing, 15.0);
        calibration.record("train.resnet50", &params, &ModeSetting::TimeSlicing, 12.0);
        let found: Vec<String> = check(&scenario, &plan, Some(&calibration))
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            found,
            vec![
                "tenant `train` (train.resnet50, c0, time-slicing): about 60 samples in the \
                 window (12.000 steps/s as results/old measured it time-slicing, in 5 s), \
                 fewer than the 100 run.min_samples = 100 needs; lengthen run.duration_s (or \
                 --duration) to at least 8.4 s, or use smaller steps"
            ]
        );
    }

    #[test]
    fn every_shipped_scenario_is_feasible() {
        for (name, text) in crate::scenario::SHIPPED {
            let (scenario, plan) = scenario(text);
            let found = check(&scenario, &plan, None);
            assert!(found.is_empty(), "{name}: {found:?}");
        }
    }
}
