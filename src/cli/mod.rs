//! The command line: argument definitions (clap derive) and one handler per subcommand.
//! Handlers print results on stdout and progress on stderr, and return the exit code.

mod compare;
mod cost;
mod doctor;
mod error;
mod feasibility;
mod k8s;
mod list;
mod merge;
mod monitor;
mod recommend;
mod report;
mod run;
mod validate;
mod worker;

pub use error::CliError;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in `gpushare --help`.
pub mod exit {
    /// Everything worked and every run was VALID.
    pub const OK: u8 = 0;
    /// gpushare itself failed (I/O, a worker could not be started, ...).
    pub const ERROR: u8 = 1;
    /// Bad command line or invalid scenario: nothing ran.
    pub const USAGE: u8 = 2;
    /// The study ran, but at least one run was INVALID or FAILED.
    pub const INVALID_RUN: u8 = 3;
    /// `report`: the study holds fewer runs than its plan (interrupted, killed, running).
    pub const INCOMPLETE: u8 = 4;
    /// `compare`: a figure regressed beyond the noise threshold.
    pub const REGRESSED: u8 = 5;
    /// SIGINT or SIGTERM: stopped early, partial results written.
    pub const INTERRUPTED: u8 = 130;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success and every run VALID; 1 gpushare failed; 2 bad command line or invalid
scenario (nothing ran); 3 a run was INVALID or FAILED; 4 `report` of an incomplete study
(fewer runs recorded than planned); 5 `compare` found a regression beyond its noise
threshold; 130 interrupted (partial results written).

Start with `gpushare doctor`, then `gpushare run` (the default scenario) or
`gpushare run scenarios/<file>.toml`. `gpushare list` shows workloads, modes and scenarios.";

/// Measure ML workloads sharing one NVIDIA GPU under time-slicing, MPS and MIG.
#[derive(Debug, Parser)]
#[command(name = "gpushare", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files; each problem is reported as file:line:column.
    Validate(validate::ValidateArgs),
    /// List workloads (with their parameters), sharing modes and shipped scenarios.
    List(list::ListArgs),
    /// Run a scenario's sweep and write results/<study>/run.json; `--prometheus ADDR` serves
    /// its live figures meanwhile.
    Run(run::RunArgs),
    /// Render a study's report from its run.json (or run.json.gz), without re-running anything.
    Report(report::ReportArgs),
    /// Compare two studies of one scenario: each tenant's NP, throughput, P50 and P99 and
    /// each mode's STP, with bootstrap confidence intervals, labelled improved, regressed or
    /// within noise. Exit status 5 when something regressed beyond the threshold.
    Compare(compare::CompareArgs),
    /// The mode (and MPS split) to choose for a study's mix: the highest STP among modes
    /// whose every SLO was met in every VALID repetition, the runner-up, what each tenant
    /// keeps, each mode's tightest SLO, and why each other mode was not chosen. Tied STPs
    /// choose the simplest mode, naming a tied one that leaves more SLO headroom.
    Recommend(recommend::RecommendArgs),
    /// A live view of each GPU (utilization, memory, clocks, power, temperature, throttle
    /// reasons, processes) with history; `--prometheus ADDR` serves it with
    /// dcgm-exporter's metric names. `--frames N` prints it once, for scripts.
    Monitor(monitor::MonitorArgs),
    /// Show what this host has: CPU, NVIDIA driver and GPUs, and which modes it can run.
    Doctor(doctor::DoctorArgs),
    /// Serve a model over HTTP with dynamic batching (POST /v1/infer, /healthz, /readyz,
    /// /metrics). Binds 127.0.0.1 unless told otherwise; SIGTERM drains in-flight requests.
    #[command(after_help = crate::serve::body::SERVE_AFTER_HELP)]
    Serve(crate::serve::ServeArgs),
    /// Send load to an HTTP endpoint, open loop (latency from each request's intended send
    /// time, so queueing is counted) or closed loop, and report the latency distribution.
    #[command(after_help = crate::load::LOAD_AFTER_HELP)]
    Load(crate::load::LoadArgs),
    /// What a unit of each tenant's work costs under each mode of a study, at your GPU's
    /// hourly price: per training epoch and per million inference requests.
    Cost(cost::CostArgs),
    /// Merge studies of one scenario from several nodes or hosts into one study, whole
    /// studies or shards of the sweep (`run --shard`): a row per node and intervals across
    /// the nodes that ran a group, then the pooled report.
    Merge(merge::MergeArgs),
    /// Kubernetes: render a scenario as manifests, or run it on a cluster with kubectl.
    K8s(k8s::K8sArgs),
    /// Internal: run one tenant, speaking the worker protocol on stdin/stdout, or over TCP
    /// with --connect.
    ///
    /// Exit status: 0 done, 2 the workload failed, 3 protocol error (or refused by the
    /// runner), 4 the runner went away, 5 the runner could not be reached.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
    /// Removes a study's containers once the runner that started them is gone.
    #[command(hide = true)]
    ContainerJanitor(crate::isolation::container::janitor::JanitorArgs),
}

/// Lets a command that only prints end quietly when its reader goes away
/// (`gpushare list | head`), as Unix tools do, instead of panicking in `println!`. Only for
/// such commands: the runner must survive a worker closing its pipe.
fn quiet_on_closed_stdout() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// What a command line that did not parse (or asked for help) prints, and its exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct EarlyExit {
    pub text: String,
    /// Help and version go to stdout; errors to stderr.
    pub to_stdout: bool,
    pub code: u8,
}

/// Parses a command line. Every subcommand's bad values end here with exit 2 ([`exit::USAGE`]),
/// and a negative number, which clap takes for an unknown flag and answers with a tip to
/// write `-- -3`, gets a message that says what gpushare takes instead.
pub fn parse<I, T>(args: I) -> Result<Cli, EarlyExit>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let err = match Cli::try_parse_from(&args) {
        Ok(cli) => return Ok(cli),
        Err(err) => err,
    };
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return Err(EarlyExit {
            text: err.render().to_string(),
            to_stdout: true,
            code: exit::OK,
        });
    }
    let invalid = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.clone()),
        _ => None,
    };
    let negative = invalid.filter(|arg| {
        err.kind() == ErrorKind::UnknownArgument && arg.parse::<f64>().is_ok_and(|v| v < 0.0)
    });
    let text = match negative {
        Some(number) => {
            let position = args
                .iter()
                .position(|a| a.to_str() == Some(number.as_str()));
            let flag = position
                .and_then(|p| p.checked_sub(1))
                .and_then(|p| args[p].to_str())
                .filter(|a| a.starts_with('-'))
                .map(|flag| format!("{flag} "))
                .unwrap_or_default();
            let command = args
                .get(1)
                .and_then(|a| a.to_str())
                .filter(|a| !a.starts_with('-'))
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            format!(
                "error: {flag}{number}: no gpushare option takes a negative number (every count, \
                 rate and duration is positive); `gpushare{command} --help` gives each option's range\n"
            )
        }
        None => err.render().to_string(),
    };
    Err(EarlyExit {
        text,
        to_stdout: false,
        code: exit::USAGE,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new().map_err(CliError::Runtime)
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if matches!(
        cli.command,
        Command::Validate(_)
            | Command::List(_)
            | Command::Report(_)
            | Command::Compare(_)
            | Command::Recommend(_)
            | Command::Doctor(_)
            | Command::Merge(_)
            | Command::Cost(_)
            | Command::K8s(k8s::K8sArgs {
                command: k8s::K8sCommand::Render(_)
            })
    ) {
        quiet_on_closed_stdout();
    }
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::List(args) => list::run(args),
        Command::Run(args) => run::run(args),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Recommend(args) => recommend::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Serve(args) => runtime()?
            .block_on(crate::serve::serve(args, crate::serve::shutdown_signal()))
            .map(|()| ExitCode::SUCCESS)
            .map_err(CliError::from),
        Command::Load(args) => runtime()?
            .block_on(crate::load::run(&args))
            .map(|status| match status {
                crate::load::LoadStatus::OnSchedule => ExitCode::SUCCESS,
                crate::load::LoadStatus::BehindSchedule => ExitCode::from(exit::INVALID_RUN),
            })
            .map_err(CliError::from),
        Command::ContainerJanitor(args) => {
            crate::isolation::container::janitor::run(&args)
                .map_err(|e| CliError::Runner(crate::runner::RunnerError::from(e)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge(args) => merge::run(args),
        Command::Cost(args) => cost::run(args),
        Command::K8s(args) => k8s::run(args),
        Command::Worker(args) => worker::run(args),
    }
}
