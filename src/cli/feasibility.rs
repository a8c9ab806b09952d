//! The sample-count check `validate` and `run` share: `--strict` and `--calibrate DIR`,
//! the calibration read from a previous study, and the warnings on stderr.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::results::{store, Study};
use crate::scenario::{self, Calibration, Plan, Scenario};

#[derive(Debug, Clone, Default, Args)]
pub struct FeasibilityArgs {
    /// Fail (exit 2) instead of warning when a tenant cannot complete the samples its
    /// runs need (run.min_samples, or its SLO percentile's minimum).
    #[arg(long)]
    pub strict: bool,
    /// A previous study (results directory or run.json) whose recorded throughput
    /// estimates the sample counts of model tenants, whose rate no parameter fixes.
    #[arg(long, value_name = "DIR")]
    pub calibrate: Option<PathBuf>,
}

/// Step rates per workload, parameters and mode, from every tenant record of `study`
/// with a summary.
pub fn calibration(study: &Study, source: &str) -> Calibration {
    let mut calibration = Calibration::new(source);
    for run in &study.runs {
        let Some(config) = study.plan.configs.get(run.config_idx) else {
            continue;
        };
        for tenant in &run.tenants {
            let (Some(summary), Some(instance)) = (
                &tenant.summary,
                config.tenants.iter().find(|i| i.name == tenant.name),
            ) else {
                continue;
            };
            if summary.window_s > 0.0 {
                calibration.record(
                    &instance.workload,
                    &instance.params,
                    &run.mode,
                    summary.steps as f64 / summary.window_s,
                );
            }
        }
    }
    calibration
}

impl FeasibilityArgs {
    /// Reads the calibration study, when one is given.
    pub fn load_calibration(&self) -> Result<Option<Calibration>, CliError> {
        let Some(dir) = &self.calibrate else {
            return Ok(None);
        };
        let study = store::read_study(dir)?;
        Ok(Some(calibration(&study, &dir.display().to_string())))
    }

    /// Prints one warning per shortfall on stderr; with `--strict`, any shortfall is an
    /// error.
    pub fn check(
        &self,
        scenario: &Scenario,
        plan: &Plan,
        calibration: Option<&Calibration>,
    ) -> Result<usize, CliError> {
        let found = scenario::check_feasibility(scenario, plan, calibration);
        for shortfall in &found {
            let level = if self.strict { "error" } else { "warning" };
            eprintln!("{level}: {shortfall}");
        }
        if self.strict && !found.is_empty() {
            return Err(CliError::Usage(format!(
                "{} tenant configuration(s) of scenario `{}` cannot complete the samples their runs need (--strict)",
                found.len(),
                scenario.name
            )));
        }
        Ok(found.len())
    }
}
