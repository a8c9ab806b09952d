use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::merge;
use crate::report::{self, Format};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Study directories (or run.json / run.json.gz files) of one scenario, one per node
    /// or host: each the whole sweep, or a shard of it (`run --shard I/N`), in any mix.
    #[arg(required = true, num_args = 2..)]
    pub studies: Vec<PathBuf>,
    /// Write the merged study here as run.json (`gpushare report` renders it again).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// How to print the merged study's report after the per-node rows.
    #[arg(long, short, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
}

pub fn run(args: MergeArgs) -> Result<ExitCode, CliError> {
    let nodes = merge::read_all(&args.studies)?;
    let merged = merge::merge(&nodes)?;
    println!(
        "# `{}` on {} nodes\n\n{}.\n\nPer node, and across the nodes that ran a group (intervals over their means):\n",
        merged.scenario.name,
        nodes.len(),
        merge::Coverage::of(&nodes).sentence()
    );
    print!("{}", merge::render_node_rows(&merge::node_rows(&nodes)));
    println!("\n## All nodes' runs pooled\n");
    print!("{}", report::render(&merged, args.format));
    if let Some(dir) = &args.out {
        let path = merge::write(dir, &merged)?;
        eprintln!("merged study: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
