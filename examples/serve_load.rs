//! `gpushare serve` and `gpushare load` until the main CLI has these subcommands.
//!
//! The same arguments as the real subcommands, so `bench/loadgen/compare_wrk.sh` runs with
//! either: `cargo run --release --example serve_load -- serve --model test.delay` here,
//! `gpushare serve --model test.delay` once the CLI is wired.

use anyhow::Result;
use clap::{Parser, Subcommand};
use gpushare::load::LoadArgs;
use gpushare::serve::{shutdown_signal, ServeArgs};

#[derive(Parser)]
#[command(about = "gpushare serve / load (stand-in for the main CLI)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the inference server.
    Serve(ServeArgs),
    /// Send open- or closed-loop HTTP load and report latency.
    Load(LoadArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => gpushare::serve::serve(args, shutdown_signal()).await?,
        Command::Load(args) => gpushare::load::run(&args).await?,
    }
    Ok(())
}
