use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{exit, CliError};
use crate::metrics::{self, compare};
use crate::report::compare::{check_comparable, render, CompareFormat};
use crate::results::store;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The study to compare against (a study directory or its run.json[.gz]).
    pub base: PathBuf,
    /// The study that may have changed.
    pub new: PathBuf,
    /// Noise threshold: a change counts only when its whole 95% bootstrap interval lies
    /// beyond it. A percentage: `5%` or `5`.
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    pub threshold: f64,
    /// How to print the comparison.
    #[arg(long, short, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Compare studies of different scenarios or GPUs anyway.
    #[arg(long)]
    pub force: bool,
}

/// A relative threshold from `5%` or `5` (percent).
fn parse_threshold(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!(
            "must be a percentage from 0 to 100, such as 5% or 2.5, got {text}"
        )),
    }
}

pub fn run(args: CompareArgs) -> Result<ExitCode, CliError> {
    let base = store::read_study(&args.base)?;
    let new = store::read_study(&args.new)?;
    if !args.force {
        check_comparable(&base, &new)?;
    }
    let comparison = compare::compare(
        &metrics::analyze(&base),
        &metrics::analyze(&new),
        args.threshold,
    );
    print!(
        "{}",
        render(
            &comparison,
            &args.base.display().to_string(),
            &args.new.display().to_string(),
            args.format
        )
    );
    Ok(ExitCode::from(if comparison.regressed() {
        exit::REGRESSED
    } else {
        exit::OK
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_threshold;

    #[test]
    fn thresholds_are_percentages() {
        assert_eq!(parse_threshold("5%"), Ok(0.05));
        assert_eq!(parse_threshold("2.5"), Ok(0.025));
        assert_eq!(
            parse_threshold("-1%").unwrap_err(),
            "must be a percentage from 0 to 100, such as 5% or 2.5, got -1%"
        );
    }
}
