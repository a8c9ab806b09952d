//! Scenario files: the TOML format, validation with locations, and sweep expansion.
//!
//! A scenario names tenants, the sharing modes to compare and run settings. This module
//! turns the text into a validated [`Scenario`] and a [`Plan`]; it never touches a GPU or
//! starts a process.

mod budget;
mod error;
mod feasibility;
mod model;
mod plan;
mod shard;
mod shipped;
mod spec;
mod validate;

pub use budget::{
    wall_time, Budget, MAX_ESTIMATED_S, MAX_RUNS, MAX_WORKERS_PER_RUN, OVERHEAD_PER_WINDOW_S,
};
pub use error::{Problem, Problems, ScenarioError};
pub use feasibility::{check as check_feasibility, Calibration, Shortfall};
pub use model::{IsolationKind, RunSettings, Scenario, Slo, Tenant};
pub use plan::{Plan, PlannedRun, TenantConfig, TenantInstance};
pub use shard::{check_count as check_shard_count, parse_shard, Shard, ShardSpec};
pub use shipped::SHIPPED;
pub use validate::MAX_REPLICAS;

use std::path::{Path, PathBuf};

use crate::gpu::{GpuError, HostGpus};

/// The folder of shipped scenarios, relative to the repository root.
pub const SHIPPED_DIR: &str = "scenarios";

/// The shipped scenario `gpushare run` uses when none is given on a host with a GPU.
pub const GPU_DEFAULT_SCENARIO: &str = "probes-mix";
/// The shipped scenario `gpushare run` uses when none is given on a host without one.
pub const CPU_DEFAULT_SCENARIO: &str = "smoke-cpu";

/// The shipped scenario `gpushare run` uses when none is given, and why, from what NVML
/// says about this host's GPUs. The caller reads them (`gpu::host_gpus()`) so that this
/// module still touches no GPU.
pub fn default_scenario(gpus: &Result<HostGpus, GpuError>) -> (&'static str, String) {
    let anywhere = "it runs on any host";
    match gpus {
        Ok(host) => match host.gpus.first() {
            Some(gpu) => (
                GPU_DEFAULT_SCENARIO,
                format!(
                    "this host has GPU {} ({}); `gpushare run {CPU_DEFAULT_SCENARIO}` checks the pipeline on the CPU instead",
                    gpu.index, gpu.name
                ),
            ),
            None => (
                CPU_DEFAULT_SCENARIO,
                format!("NVML sees no GPU on this host; {anywhere}"),
            ),
        },
        Err(GpuError::NotBuilt) => (
            CPU_DEFAULT_SCENARIO,
            format!("this gpushare was built without the `cuda` feature; {anywhere}"),
        ),
        Err(error) => (
            CPU_DEFAULT_SCENARIO,
            format!("no NVIDIA GPU: {}; {anywhere}", crate::errors::error_chain(error)),
        ),
    }
}

/// Reads and validates a scenario given as a file path or, when no such file exists, as
/// the name of a shipped scenario (`smoke-cpu`). Returns the scenario, its text and the
/// path it is reported under.
pub fn resolve(arg: &Path) -> Result<(Scenario, String, PathBuf), ScenarioError> {
    if !arg.exists() {
        if let Some(text) = arg.to_str().and_then(shipped::find) {
            let stem = arg.to_string_lossy();
            let stem = stem.strip_suffix(".toml").unwrap_or(&stem);
            let path = Path::new(SHIPPED_DIR).join(format!("{stem}.toml"));
            let scenario = parse(&path, text)?;
            return Ok((scenario, text.to_string(), path));
        }
    }
    match load(arg) {
        // A bare name (no folder) may have been meant as a shipped scenario.
        Err(ScenarioError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && arg.components().count() == 1 =>
        {
            Err(not_found(arg))
        }
        Err(err) => Err(err),
        Ok((scenario, source)) => Ok((scenario, source, arg.to_path_buf())),
    }
}

/// Neither a file nor a shipped scenario: says so, with the shipped name it is closest to.
fn not_found(arg: &Path) -> ScenarioError {
    let text = arg.to_string_lossy();
    let stem = text.strip_suffix(".toml").unwrap_or(&text);
    let suggestion = SHIPPED
        .iter()
        .map(|(name, _)| (strsim::jaro_winkler(name, stem), *name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default();
    ScenarioError::NotFound {
        arg: arg.to_path_buf(),
        suggestion,
        shipped: SHIPPED
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<(Scenario, String), ScenarioError> {
    let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = String::from_utf8(bytes).map_err(|err| ScenarioError::NotText {
        path: path.to_path_buf(),
        offset: err.utf8_error().valid_up_to(),
    })?;
    let scenario = validate::parse(path, &source).map_err(ScenarioError::Invalid)?;
    Ok((scenario, source))
}

/// Validates scenario text; `path` names it in messages.
pub fn parse(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    validate::parse(path, source).map_err(ScenarioError::Invalid)
}

/// The plan's size and estimated wall time, or an error when it exceeds a limit and
/// `force` is not given. Call it before [`Plan::expand`]: it counts without expanding.
pub fn check_budget(scenario: &Scenario, force: bool) -> Result<Budget, ScenarioError> {
    let budget = Budget::of(scenario);
    let over = budget.over_limits();
    if over.is_empty() || force {
        Ok(budget)
    } else {
        Err(ScenarioError::TooLarge {
            scenario: scenario.name.clone(),
            over: over.join(", "),
            budget: budget.to_string(),
        })
    }
}

/// Replaces every run's measured window, as `--duration` asks.
pub fn override_duration(scenario: &mut Scenario, duration_s: f64) -> Result<(), ScenarioError> {
    if let Some(min) = scenario.run.min_duration_s {
        if min > duration_s {
            return Err(ScenarioError::Plan {
                scenario: scenario.name.clone(),
                reason: format!(
                    "--duration {duration_s} s is shorter than the scenario's run.min_duration_s ({min} s): lengthen it or lower min_duration_s"
                ),
            });
        }
    }
    scenario.run.duration_s = duration_s;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuInfo;

    fn host(names: &[&str]) -> HostGpus {
        HostGpus {
            driver_version: "580.159.04".into(),
            cuda_driver_version: Some("13.0".into()),
            gpus: names
                .iter()
                .enumerate()
                .map(|(index, name)| GpuInfo {
                    index: index as u32,
                    name: name.to_string(),
                    uuid: format!("GPU-{index}"),
                    memory_total_bytes: None,
                    compute_mode: None,
                    mig: None,
                    notes: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn a_host_with_a_gpu_runs_the_probes_and_says_so() {
        let (name, why) = default_scenario(&Ok(host(&["NVIDIA H200"])));
        assert_eq!(name, "probes-mix");
        assert_eq!(
            why,
            "this host has GPU 0 (NVIDIA H200); `gpushare run smoke-cpu` checks the pipeline on the CPU instead"
        );
    }

    #[test]
    fn without_a_gpu_the_cpu_smoke_runs_and_says_why() {
        assert_eq!(
            default_scenario(&Ok(host(&[]))),
            (
                "smoke-cpu",
                "NVML sees no GPU on this host; it runs on any host".to_string()
            )
        );
        assert_eq!(
            default_scenario(&Err(GpuError::NotBuilt)),
            (
                "smoke-cpu",
                "this gpushare was built without the `cuda` feature; it runs on any host"
                    .to_string()
            )
        );
        let (name, why) = default_scenario(&Err(GpuError::NoSuchGpu {
            gpu_index: 0,
            n_gpus: 0,
        }));
        assert_eq!(name, "smoke-cpu");
        assert_eq!(
            why,
            "no NVIDIA GPU: finding GPU 0: NVML sees 0 GPU(s); it runs on any host"
        );
    }

    #[test]
    fn both_defaults_are_shipped() {
        for name in [GPU_DEFAULT_SCENARIO, CPU_DEFAULT_SCENARIO] {
            let text = shipped::find(name).unwrap();
            parse(Path::new(name), text).unwrap();
        }
    }
}
