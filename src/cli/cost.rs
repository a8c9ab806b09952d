use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::cost::{self, Pricing};
use crate::metrics;
use crate::results::store;

#[derive(Debug, Args)]
pub struct CostArgs {
    /// A study directory (or its run.json / run.json.gz).
    pub study: PathBuf,
    /// What one GPU costs per hour, in any currency (your on-demand, committed-use or
    /// spot price: gpushare ships none, prices go stale).
    #[arg(long, value_parser = positive)]
    pub price_per_hour: f64,
    /// Items in one training epoch (default: ImageNet-1k's 1,281,167 training images).
    #[arg(long, default_value_t = cost::IMAGENET_1K_TRAIN_IMAGES)]
    pub epoch_items: u64,
    /// Price other tenants per this many items (requests, sequences).
    #[arg(long, default_value_t = 1_000_000)]
    pub per_items: u64,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("must be a positive number, got {text}")),
    }
}

pub fn run(args: CostArgs) -> Result<ExitCode, CliError> {
    if args.epoch_items == 0 || args.per_items == 0 {
        return Err(CliError::Usage(
            "--epoch-items and --per-items must be at least 1".into(),
        ));
    }
    let study = store::read_study(&args.study)?;
    let analysis = metrics::analyze(&study);
    let pricing = Pricing {
        price_per_hour: args.price_per_hour,
        epoch_items: args.epoch_items,
        per_items: args.per_items,
    };
    let rows = cost::cost_rows(&analysis, &pricing);
    print!("{}", cost::render(&study.scenario.name, &rows, &pricing));
    Ok(ExitCode::SUCCESS)
}
