use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{exit, CliError};
use crate::scenario;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check (for example `scenarios/*.toml`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Checks every file and reports every problem; exit 2 if any file is invalid.
pub fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
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
