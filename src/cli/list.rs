use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::scenario;
use crate::workload::{self, Availability, Device};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also list each workload's parameters with defaults.
    #[arg(long, short)]
    pub params: bool,
}

pub fn run(args: ListArgs) -> Result<ExitCode, CliError> {
    println!("Workloads (tenants' `workload = ...`):");
    let mut reasons: Vec<&str> = vec![];
    // Columns as wide as their longest entry, so no name runs into its description.
    let name_width = workload::registry()
        .iter()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(0);
    let item_width = workload::registry()
        .iter()
        .map(|w| w.item.len())
        .max()
        .unwrap_or(0);
    let param_width = workload::registry()
        .iter()
        .flat_map(|w| w.params)
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for w in workload::registry() {
        let device = match w.device {
            Device::Cpu => "CPU",
            Device::Gpu => "GPU",
        };
        let availability = match w.availability {
            Availability::Available => String::new(),
            Availability::Unavailable(reason) => {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
                let idx = reasons.iter().position(|r| *r == reason).unwrap_or(0);
                format!(" [unavailable {}]", "*".repeat(idx + 1))
            }
        };
        println!(
            "  {:<name_width$}  {device}, counts {:<item_width$}  {}{availability}",
            w.name, w.item, w.summary
        );
        if args.params {
            for p in w.params {
                println!(
                    "      {:<param_width$} = {:<8} {}",
                    p.name, p.default, p.doc
                );
            }
        }
    }
    for (idx, reason) in reasons.iter().enumerate() {
        println!("  {} unavailable: {reason}", "*".repeat(idx + 1));
    }
    println!("\nSharing modes (`[[modes]] mode = ...`):");
    for (name, doc) in [
        (
            "exclusive",
            "each tenant alone, one after another: the baseline for NP (always measured)",
        ),
        (
            "time-slicing",
            "all tenants at once as processes, the driver's default scheduling",
        ),
        (
            "mps",
            "NVIDIA Multi-Process Service; active_thread_percentage, pinned_memory_limit_mib",
        ),
        ("mig", "tenants on existing MIG instances; profile"),
    ] {
        println!("  {name:<14} {doc}");
    }
    println!(
        "\nShipped scenarios (`gpushare run <name>`; files in {}/):",
        scenario::SHIPPED_DIR
    );
    let scenario_width = scenario::SHIPPED
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, text) in scenario::SHIPPED {
        let description = scenario::parse(std::path::Path::new(name), text)
            .map(|s| s.description)
            .unwrap_or_else(|e| format!("(invalid: {e})"));
        let default = if *name == scenario::GPU_DEFAULT_SCENARIO {
            " (default with a GPU)"
        } else if *name == scenario::CPU_DEFAULT_SCENARIO {
            " (default without a GPU)"
        } else {
            ""
        };
        println!("  {name:<scenario_width$}  {description}{default}");
    }
    if !args.params {
        println!("\n`gpushare list --params` shows each workload's parameters.");
    }
    Ok(ExitCode::SUCCESS)
}
