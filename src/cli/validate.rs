use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::feasibility::FeasibilityArgs;
use super::{exit, CliError};
use crate::scenario;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check (for example `scenarios/*.toml`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub feasibility: FeasibilityArgs,
}

/// Checks every file and reports every problem; exit 2 if any file is invalid (or, with
/// `--strict`, cannot reach its sample counts).
pub fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let calibration = args.feasibility.load_calibration()?;
    let mut n_bad = 0;
    for path in &args.files {
        match scenario::load(path) {
            Ok((scenario, _)) => {
                let plan = scenario::Plan::expand(&scenario);
                println!(
                    "{}: ok, scenario `{}`, {} run(s)",
                    path.display(),
                    scenario.name,
                    plan.runs.len()
                );
                if let Err(err) = args
                    .feasibility
                    .check(&scenario, &plan, calibration.as_ref())
                {
                    n_bad += 1;
                    eprintln!("{}: {err}", path.display());
                }
            }
            Err(err) => {
                n_bad += 1;
                eprintln!("{err}");
            }
        }
    }
    if n_bad > 0 {
        eprintln!("{n_bad} of {} file(s) invalid", args.files.len());
        return Ok(ExitCode::from(exit::USAGE));
    }
    Ok(ExitCode::SUCCESS)
}
