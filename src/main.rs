use std::io::Write;
use std::process::ExitCode;

use gpushare::cli;
use gpushare::errors::error_chain;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(early) => {
            // Nothing more to do if the stream is gone; the exit code still tells.
            let _ = if early.to_stdout {
                write!(std::io::stdout(), "{}", early.text)
            } else {
                write!(std::io::stderr(), "{}", early.text)
            };
            return ExitCode::from(early.code);
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {}", error_chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}
