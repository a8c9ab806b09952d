use std::process::ExitCode;

use clap::Parser;
use gpushare::cli::{self, Cli};

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            let chain: Vec<String> = anyhow::Error::from(err)
                .chain()
                .map(|e| e.to_string())
                .collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(code)
        }
    }
}
