use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::feasibility::FeasibilityArgs;
use super::{exit, CliError};
use crate::errors::error_chain;
use crate::scenario;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check (for example `scenarios/*.toml`), or names of shipped
    /// scenarios (`smoke-cpu`), as `gpushare run` takes them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Accept a plan beyond the size limits (runs, workers per run, estimated wall time;
    /// README, "Plan size").
    #[arg(long)]
    pub force: bool,
    /// Also check that this host and build can run each scenario, as `gpushare run` does
    /// before its first run: the torch feature for torch workloads, an NVIDIA GPU for GPU
    /// tenants, the MPS control program for `mps`, MIG instances of each profile for `mig`.
    /// Without it, validation does not depend on the host.
    #[arg(long)]
    pub host: bool,
    #[command(flatten)]
    pub feasibility: FeasibilityArgs,
}

/// Checks every file and reports every problem; exit 2 if any file is invalid (or, with
/// `--strict`, cannot reach its sample counts).
pub fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let calibration = args.feasibility.load_calibration()?;
    let mut n_bad = 0;
    let host = args.host.then(crate::doctor::diagnose);
    for arg in &args.files {
        let checked =
            scenario::resolve(arg)
                .map_err(CliError::from)
                .and_then(|(scenario, _, path)| {
                    let budget = scenario::check_budget(&scenario, args.force)?;
                    if let Some(report) = &host {
                        crate::doctor::check_scenario(&scenario, report)?;
                    }
                    Ok((scenario, path, budget))
                });
        match checked {
            Ok((scenario, path, budget)) => {
                let here = if host.is_some() {
                    ", runs on this host"
                } else {
                    ""
                };
                println!(
                    "{}: ok, scenario `{}`, {budget}{here}",
                    path.display(),
                    scenario.name
                );
                // The sample counts are checked on the expanded plan, which a plan beyond
                // the size limits (accepted with --force) is too large to expand here.
                if budget.over_limits().is_empty() {
                    let plan = scenario::Plan::expand(&scenario);
                    if let Err(err) = args
                        .feasibility
                        .check(&scenario, &plan, calibration.as_ref())
                    {
                        n_bad += 1;
                        eprintln!("{}: {err}", path.display());
                    }
                } else {
                    eprintln!(
                        "{}: sample counts not checked: the plan is beyond the size limits",
                        path.display()
                    );
                }
            }
            Err(err) => {
                n_bad += 1;
                eprintln!("{}", error_chain(&err));
            }
        }
    }
    if n_bad > 0 {
        eprintln!("{n_bad} of {} file(s) invalid", args.files.len());
        return Ok(ExitCode::from(exit::USAGE));
    }
    Ok(ExitCode::SUCCESS)
}
