//! Scenario files: the TOML format, validation with locations, and sweep expansion.
//!
//! A scenario names tenants, the sharing modes to compare and run settings. This module
//! turns the text into a validated [`Scenario`] and a [`Plan`]; it never touches a GPU or
//! starts a process.

mod error;
mod model;
mod plan;
mod shipped;
mod spec;
mod validate;

pub use error::{Problem, Problems, ScenarioError};
pub use model::{RunSettings, Scenario, Slo, Tenant};
pub use plan::{Plan, PlannedRun, TenantConfig, TenantInstance};
pub use shipped::SHIPPED;
pub use validate::MAX_REPLICAS;

use std::path::{Path, PathBuf};

/// The folder of shipped scenarios, relative to the repository root.
pub const SHIPPED_DIR: &str = "scenarios";

/// The shipped scenario `gpushare run` uses when none is given, and why.
pub const DEFAULT_SCENARIO: (&str, &str) = (
    "smoke-cpu",
    "the default until a GPU default ships: it runs on any host",
);

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
    let (scenario, source) = load(arg)?;
    Ok((scenario, source, arg.to_path_buf()))
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<(Scenario, String), ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let scenario = validate::parse(path, &source).map_err(ScenarioError::Invalid)?;
    Ok((scenario, source))
}

/// Validates scenario text; `path` names it in messages.
pub fn parse(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    validate::parse(path, source).map_err(ScenarioError::Invalid)
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
