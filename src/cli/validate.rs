use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

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
}

/// Checks every file and reports every problem; exit 2 if any file is invalid.
pub fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let mut n_bad = 0;
    for arg in &args.files {
        let checked = scenario::resolve(arg).and_then(|(scenario, _, path)| {
            let budget = scenario::check_budget(&scenario, args.force)?;
            Ok((scenario, path, budget))
        });
        match checked {
            Ok((scenario, path, budget)) => {
                println!(
                    "{}: ok, scenario `{}`, {budget}",
                    path.display(),
                    scenario.name
                );
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
