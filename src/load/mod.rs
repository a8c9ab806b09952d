//! Load generator: `gpushare load`.
//!
//! Sends HTTP requests to one URL and reports throughput, latency percentiles and SLO
//! attainment. Open loop by default: requests follow a schedule fixed in advance (constant
//! rate or Poisson arrivals) whatever the server does, and latency counts from each
//! request's intended send time, so a stalled server shows up in the percentiles instead of
//! silently slowing the load (no coordinated omission). Closed loop (`--closed-loop`) is
//! for saturation throughput. `--find-max-rate` searches for the highest rate meeting a
//! P99 target. `--stream` (hidden) reports each request as it finishes instead, for the
//! `serve.<model>` tenant that runs this generator as its child process.
//!
//! Owns the schedule, the HTTP/1.1 client, per-request accounting and the report. Must not
//! know what the server computes: any HTTP endpoint can be loaded.

mod client;
mod config;
mod error;
mod generator;
mod recorder;
mod report;
mod schedule;
mod search;
mod stream;
mod timer;

pub use config::{
    guess_content_type, LoadArgs, LoadConfig, LoadMode, ReportFormat, MAX_DURATION, MAX_RATE_PER_S,
    MAX_STREAM_RATE_PER_S,
};
pub use error::LoadError;
pub use generator::{run_load, MAX_QUEUED, YIELD_EVERY};
pub use recorder::ErrorCounts;
pub use report::{required_samples, LagSummary, LatencySummary, LoadReport, SloSummary};
pub use schedule::{Arrivals, Schedule};
pub use search::{find_max_rate, MaxRateReport, Probe, SearchConfig, SearchStop};
pub use stream::{
    exit_when_stdin_closes, parse_line, Completion, CompletionSink, RequestOutcome, StreamLine,
    STREAM_DURATION,
};

use std::io::Write;

/// The end of `gpushare load --help`: memory, time and exit codes.
pub const LOAD_AFTER_HELP: &str = "\
Memory stays bounded whatever --rate: each generator thread queues at most 65,536 send
times. A run ends by --duration + --drop-after + --timeout. A request that waited more
than --drop-after for a free connection, or was due while every connection was busy and
the queue full, is dropped (an SLO miss). When the generator itself cannot issue requests
within --drop-after of their time (the rate is beyond its threads), it skips ahead,
counts those requests as behind schedule, and says so on stderr.

Exit codes: 0 the load ran on schedule (whatever the server answered); 1 gpushare failed
(no connection could be opened, I/O); 2 bad command line; 3 the generator could not keep
its schedule (the report is still printed).";

/// Whether a load run loaded the server as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    /// Every request was issued within `--drop-after` of its intended time (or the run was
    /// closed loop or a stream).
    OnSchedule,
    /// The generator could not keep its schedule (in a run, or in a probe of the search,
    /// which then stopped); the report and a sentence on stderr say how many requests it
    /// could not issue. `gpushare load` exits 3.
    BehindSchedule,
}

/// Runs `gpushare load`: one run, or the max-rate search with `--find-max-rate`, and prints
/// the report on stdout in `--format` (probes go to stderr as they finish).
pub async fn run(args: &LoadArgs) -> Result<LoadStatus, LoadError> {
    if args.stream {
        return run_stream(args).await.map(|()| LoadStatus::OnSchedule);
    }
    let mut status = LoadStatus::OnSchedule;
    let config = LoadConfig::from_args(args)?;
    let rendered = match (args.find_max_rate, args.slo_p99) {
        (true, Some(slo_p99)) => {
            let search = SearchConfig {
                max_probes: args.max_probes,
                ..SearchConfig::new(slo_p99)
            };
            let report =
                find_max_rate(&config, &search, |probe| eprintln!("{}", probe.to_line())).await?;
            if let Some(sentence) = report.behind_schedule_sentence() {
                eprintln!("gpushare load: {sentence}");
                status = LoadStatus::BehindSchedule;
            }
            match args.format {
                ReportFormat::Json => to_json(&report)?,
                ReportFormat::Table => max_rate_summary(&report),
            }
        }
        _ => {
            let report = run_load(&config).await?;
            if let Some(sentence) = report.behind_schedule_sentence() {
                eprintln!("gpushare load: {sentence}");
                status = LoadStatus::BehindSchedule;
            }
            match args.format {
                ReportFormat::Json => to_json(&report)?,
                ReportFormat::Table => report.to_table(),
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{rendered}").map_err(LoadError::Write)?;
    Ok(status)
}

/// `--stream`: the schedule runs until stdin closes, and every finished request is a line
/// on stdout; nothing else is printed there.
async fn run_stream(args: &LoadArgs) -> Result<(), LoadError> {
    let mut config = LoadConfig::from_args(args)?;
    config.duration = STREAM_DURATION;
    config.completions = Some(CompletionSink::stdout().map_err(LoadError::SpawnThread)?);
    exit_when_stdin_closes().map_err(LoadError::SpawnThread)?;
    run_load(&config).await.map(|_| ())
}

fn to_json(value: &impl serde::Serialize) -> Result<String, LoadError> {
    serde_json::to_string_pretty(value).map_err(LoadError::Json)
}

fn max_rate_summary(report: &MaxRateReport) -> String {
    let rate = report
        .max_rate_req_per_s
        .map_or("none".to_owned(), |rate| format!("{rate:.1} req/s"));
    let failing = report
        .min_failing_rate_req_per_s
        .map_or("none probed".to_owned(), |rate| format!("{rate:.1} req/s"));
    format!(
        "max rate meeting P99 <= {} ms: {rate} (lowest failing: {failing}; {} probes, stopped: {:?})",
        report.slo_p99_ms,
        report.probes.len(),
        report.stopped
    )
}
