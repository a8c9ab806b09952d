use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use gpushare::cli::{self, Cli};
use gpushare::errors::error_chain;

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            // Nothing more to do if stderr is gone; the exit code still tells.
            let _ = writeln!(std::io::stderr(), "error: {}", error_chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}
