use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::metrics::{self, recommend};
use crate::report;
use crate::results::store;

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// A study directory (results/<study>) or its run.json[.gz].
    pub dir: PathBuf,
    /// Reject modes whose Jain fairness over NP is below this (from 0 to 1).
    #[arg(long, value_parser = parse_fairness)]
    pub min_fairness: Option<f64>,
    /// Print the recommendation as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_fairness(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("must be a number from 0 to 1, got {text}")),
    }
}

pub fn run(args: RecommendArgs) -> Result<ExitCode, CliError> {
    let study = store::read_study(&args.dir)?;
    let analysis = metrics::analyze(&study);
    let recommendations = recommend::recommend(&study, &analysis, args.min_fairness);
    if args.json {
        // Plain data with string keys: serialization cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(&recommendations).unwrap_or_default()
        );
    } else {
        println!("gpushare study `{}`", study.scenario.name);
        print!("{}", report::recommend::render(&study, &recommendations));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_fairness;

    #[test]
    fn fairness_is_between_zero_and_one() {
        assert_eq!(parse_fairness("0.9"), Ok(0.9));
        assert_eq!(
            parse_fairness("2").unwrap_err(),
            "must be a number from 0 to 1, got 2"
        );
    }
}
