use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::report::{self, Format};
use crate::results::store;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A study directory (results/<study>) or its run.json; run.json.gz is read too.
    pub dir: PathBuf,
    /// How to render it.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(args: ReportArgs) -> Result<ExitCode, CliError> {
    let study = store::read_study(&args.dir)?;
    print!("{}", report::render(&study, args.format));
    Ok(ExitCode::SUCCESS)
}
