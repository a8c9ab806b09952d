use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::worker::DialOptions;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Dial the runner at HOST:PORT and speak the protocol over TCP instead of
    /// stdin/stdout (a pod on Kubernetes, the `tcp-local` backend).
    #[arg(long, value_name = "HOST:PORT", requires = "tenant")]
    pub connect: Option<String>,
    /// The study's token, which the runner checks before it accepts this worker.
    #[arg(
        long,
        env = "GPUSHARE_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub token: String,
    /// The tenant instance this worker runs (with --connect).
    #[arg(long)]
    pub tenant: Option<String>,
    /// How long to keep trying to reach the runner, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub dial_timeout_s: f64,
    /// Serve one run after another, each in a fresh worker process, until the runner
    /// stays unreachable for --dial-timeout-s (a pod serving a whole study).
    #[arg(long, requires = "connect")]
    pub redial: bool,
}

pub fn run(args: WorkerArgs) -> Result<ExitCode, CliError> {
    let result = match (&args.connect, &args.tenant) {
        (Some(addr), Some(tenant)) => crate::worker::run_connected(&DialOptions {
            addr: addr.clone(),
            token: args.token.clone(),
            tenant: tenant.clone(),
            dial_timeout: Duration::try_from_secs_f64(args.dial_timeout_s.max(0.0))
                .unwrap_or(Duration::MAX),
            redial: args.redial,
        }),
        _ => crate::worker::run(),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            // stderr may be gone with the runner; the exit status still says it.
            let _ = writeln!(std::io::stderr(), "gpushare worker: {err}");
            Ok(ExitCode::from(err.exit_code()))
        }
    }
}
