//! `gpushare load` arguments and the validated configuration of one load run.
//!
//! Owns flag definitions, defaults and validation. Must not send anything.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, Uri};
use serde::{Deserialize, Serialize};

use super::error::LoadError;
use super::schedule::Arrivals;
use super::stream::CompletionSink;

/// The highest `--rate`: a billion requests per second, far beyond what any generator
/// issues. Above it a schedule's gaps round to zero nanoseconds.
pub const MAX_RATE_PER_S: f64 = 1e9;
/// The highest rate of a streaming generator (`--stream`, the `serve.<model>` tenant's
/// `rate`): each request is a line on stdout, including each one dropped.
pub const MAX_STREAM_RATE_PER_S: f64 = crate::limits::workload::RATE_PER_S.max;
/// The longest `--duration`, `--timeout`, `--late-after` and `--drop-after`: a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    /// Open loop, evenly spaced intended send times.
    OpenConstant,
    /// Open loop, Poisson arrivals.
    OpenPoisson,
    /// Closed loop: each connection sends its next request when the previous one is done.
    ClosedLoop,
}

impl LoadMode {
    /// The open-loop arrival process; `None` for closed loop.
    pub fn arrivals(self) -> Option<Arrivals> {
        match self {
            Self::OpenConstant => Some(Arrivals::Constant),
            Self::OpenPoisson => Some(Arrivals::Poisson),
            Self::ClosedLoop => None,
        }
    }
}

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Human-readable table.
    Table,
    /// The `LoadReport` (or the max-rate search) as JSON.
    Json,
}

/// Arguments of `gpushare load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// URL to load, `http://HOST[:PORT]/PATH` (plain HTTP/1.1; e.g. `http://127.0.0.1:8080/v1/infer`).
    pub url: String,
    /// Open loop: requests per second to send, on a schedule that does not wait for
    /// responses (above 0, at most 1e9). With --find-max-rate, the first rate probed.
    /// When the generator cannot issue requests that fast it drops what it could not
    /// send, says so and exits 3.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Open loop: Poisson arrivals (exponential gaps, seeded by --seed) instead of evenly
    /// spaced ones.
    #[arg(long)]
    pub poisson: bool,
    /// How long requests are scheduled (e.g. `10s`, `500ms`); every probe of
    /// --find-max-rate lasts this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Keep-alive HTTP/1.1 connections, opened before the run. Open loop: at most this many
    /// requests in flight (a request due while all are busy waits, and that wait is counted
    /// in its latency). Closed loop: the number of concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Generator threads, each with its own share of the connections (like wrk's -t).
    /// One is enough for tens of thousands of requests per second on loopback and leaves
    /// the other cores to the server.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Closed loop: each connection sends back to back for --duration, ignoring --rate.
    /// Latency then hides queueing (coordinated omission); use it to measure saturation
    /// throughput, not latency under load.
    #[arg(long, conflicts_with_all = ["poisson", "find_max_rate"])]
    pub closed_loop: bool,
    /// Latency target for the 99th percentile (e.g. `50ms`); the report adds SLO attainment.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub slo_p99: Option<Duration>,
    /// File sent as the body of every request (then the method is POST; without it, GET).
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Content-Type of --body; by default application/octet-stream when the file starts
    /// with the binary tensor magic `GSTN`, else application/json.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Seed of the Poisson schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Search for the highest rate whose P99 meets --slo-p99: double the rate until a probe
    /// fails, then bisect; prints each probe on stderr. A probe the generator could not
    /// send on schedule ends the search (its rate is the generator's limit, not the
    /// server's), says so and exits 3.
    #[arg(long, requires = "slo_p99")]
    pub find_max_rate: bool,
    /// --find-max-rate: most probes to run.
    #[arg(long, default_value_t = 12)]
    pub max_probes: u32,
    /// A request not answered this long after it was sent counts as a timeout error.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Open loop: a request sent more than this after its intended time counts as late
    /// (it is still sent and its latency still counts from the intended time).
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    pub late_after: Duration,
    /// Open loop: a request that could not be sent within this long after its intended
    /// time is not sent and counts as dropped: the generator has fallen hopelessly behind
    /// (all connections busy or the machine saturated). Dropped requests count as SLO misses.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub drop_after: Duration,
    /// Internal (the `serve.<model>` tenant's generator): instead of a report, print one
    /// JSON line per finished request on stdout as it finishes, and run until stdin
    /// closes (--duration is ignored).
    #[arg(long, hide = true, conflicts_with_all = ["closed_loop", "find_max_rate"])]
    pub stream: bool,
}

/// A validated load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The URL as given.
    pub url: String,
    /// The parsed URL.
    pub uri: Uri,
    pub mode: LoadMode,
    /// Open loop: intended requests per second.
    pub rate_per_s: f64,
    /// How long requests are scheduled.
    pub duration: Duration,
    /// Keep-alive connections (open loop: most in flight; closed loop: clients).
    pub connections: usize,
    /// Generator threads (at most one per connection).
    pub threads: usize,
    /// Seed of the Poisson schedule.
    pub seed: u64,
    /// Per-request timeout from the actual send.
    pub timeout: Duration,
    /// Target for the 99th percentile latency.
    pub slo_p99: Option<Duration>,
    /// Send lag above which a request counts as late.
    pub late_after: Duration,
    /// Send lag above which a request is dropped instead of sent.
    pub drop_after: Duration,
    /// GET without a body, POST with one.
    pub method: Method,
    /// Request body (empty for GET).
    pub body: Bytes,
    /// Content-Type header of the body.
    pub content_type: Option<String>,
    /// Where every finished request is reported as it finishes (`--stream`); `None` for
    /// a run that is only summarized at the end.
    pub completions: Option<CompletionSink>,
}

impl LoadConfig {
    /// Defaults of `gpushare load URL`: 100 req/s constant for 10 s on 16 connections, GET.
    pub fn new(url: &str) -> Result<Self, LoadError> {
        Ok(Self {
            url: url.to_owned(),
            uri: parse_url(url)?,
            mode: LoadMode::OpenConstant,
            rate_per_s: 100.0,
            duration: Duration::from_secs(10),
            connections: 16,
            threads: 1,
            seed: 1,
            timeout: Duration::from_secs(5),
            slo_p99: None,
            late_after: Duration::from_millis(1),
            drop_after: Duration::from_secs(1),
            method: Method::GET,
            body: Bytes::new(),
            content_type: None,
            completions: None,
        })
    }

    /// Sends `body` with POST; the content type defaults as for `--body`.
    pub fn with_body(mut self, body: impl Into<Bytes>, content_type: Option<String>) -> Self {
        let body = body.into();
        self.content_type = content_type.or_else(|| Some(guess_content_type(&body).to_owned()));
        self.method = Method::POST;
        self.body = body;
        self
    }

    /// Reads `--body` and checks the flags.
    pub fn from_args(args: &LoadArgs) -> Result<Self, LoadError> {
        let mut config = Self::new(&args.url)?;
        config.mode = match (args.closed_loop, args.poisson) {
            (true, _) => LoadMode::ClosedLoop,
            (false, true) => LoadMode::OpenPoisson,
            (false, false) => LoadMode::OpenConstant,
        };
        config.rate_per_s = args.rate;
        config.duration = args.duration;
        config.connections = args.connections;
        config.threads = args.threads;
        config.seed = args.seed;
        config.timeout = args.timeout;
        config.slo_p99 = args.slo_p99;
        config.late_after = args.late_after;
        config.drop_after = args.drop_after;
        if let Some(path) = &args.body {
            let body = std::fs::read(path).map_err(|source| LoadError::BodyFile {
                path: path.clone(),
                source,
            })?;
            config = config.with_body(body, args.content_type.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Rejects settings that cannot describe a run.
    pub fn validate(&self) -> Result<(), LoadError> {
        let max_rate = if self.completions.is_some() {
            MAX_STREAM_RATE_PER_S
        } else {
            MAX_RATE_PER_S
        };
        let too_long = [
            ("duration", self.duration),
            ("timeout", self.timeout),
            ("late_after", self.late_after),
            ("drop_after", self.drop_after),
        ]
        .into_iter()
        .find(|(_, value)| *value > MAX_DURATION);
        let reason = if self.mode != LoadMode::ClosedLoop
            && !(self.rate_per_s > 0.0 && self.rate_per_s <= max_rate)
        {
            format!(
                "rate must be above 0 and at most {max_rate} requests per second, got {}",
                self.rate_per_s
            )
        } else if let Some((name, value)) = too_long {
            format!(
                "{name} must be at most a year ({} s), got {} s",
                MAX_DURATION.as_secs(),
                value.as_secs_f64()
            )
        } else if self.connections == 0 {
            "connections must be at least 1".to_owned()
        } else if self.threads == 0 {
            "threads must be at least 1".to_owned()
        } else if self.duration.is_zero() {
            "duration must be above zero".to_owned()
        } else if self.timeout.is_zero() {
            "timeout must be above zero".to_owned()
        } else {
            return Ok(());
        };
        Err(LoadError::Config { reason })
    }
}

/// `application/octet-stream` for a binary tensor body (magic `GSTN`), else JSON.
pub fn guess_content_type(body: &[u8]) -> &'static str {
    if body.starts_with(&crate::serve::body::BINARY_MAGIC) {
        crate::serve::body::BINARY_CONTENT_TYPE
    } else {
        crate::serve::body::JSON_CONTENT_TYPE
    }
}

fn parse_url(url: &str) -> Result<Uri, LoadError> {
    let invalid = |reason: String| LoadError::Url {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|err| invalid(format!("{err}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(invalid(format!(
                "scheme {other} is not supported; use http://"
            )))
        }
        None => {
            return Err(invalid(
                "missing scheme; use http://HOST:PORT/PATH".to_owned(),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host".to_owned()));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert!(LoadConfig::new("http://127.0.0.1:8080/v1/infer").is_ok());
        let err = LoadConfig::new("https://example.invalid/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "parsing the URL \"https://example.invalid/\": scheme https is not supported; use http://"
        );
        assert!(LoadConfig::new("127.0.0.1:8080/x").is_err());
        assert!(LoadConfig::new("http:///x").is_err());
    }

    #[test]
    fn zero_rate_and_zero_connections_are_rejected() {
        let mut config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        config.rate_per_s = 0.0;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "configuring the load: rate must be above 0 and at most 1000000000 requests per \
             second, got 0"
        );
        config.rate_per_s = 10.0;
        config.connections = 0;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "configuring the load: connections must be at least 1"
        );
    }

    #[test]
    fn rates_and_durations_have_a_stated_range() {
        let mut config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        let reason = |config: &LoadConfig| config.validate().unwrap_err().to_string();
        config.rate_per_s = 1e9;
        assert!(config.validate().is_ok());
        for rate in [1.0001e9, f64::INFINITY, f64::NAN, -1.0] {
            config.rate_per_s = rate;
            assert_eq!(
                reason(&config),
                format!(
                    "configuring the load: rate must be above 0 and at most 1000000000 \
                     requests per second, got {rate}"
                )
            );
        }
        config.rate_per_s = 200_000.0;
        config.completions = Some(CompletionSink::channel().0);
        assert_eq!(
            reason(&config),
            "configuring the load: rate must be above 0 and at most 100000 requests per \
             second, got 200000"
        );
        config.rate_per_s = 100_000.0;
        assert!(config.validate().is_ok());
        config.drop_after = Duration::from_secs(1e12 as u64);
        assert_eq!(
            reason(&config),
            "configuring the load: drop_after must be at most a year (31536000 s), got \
             1000000000000 s"
        );
    }

    #[test]
    fn body_content_type_is_guessed_from_the_magic() {
        let config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        let binary = config.clone().with_body(b"GSTN\x01".to_vec(), None);
        assert_eq!(
            binary.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(binary.method, Method::POST);
        let json = config.with_body(b"{}".to_vec(), None);
        assert_eq!(json.content_type.as_deref(), Some("application/json"));
    }
}

#[cfg(test)]
mod args_tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn flags_are_consistent_and_documented() {
        Cli::command().debug_assert();
        for arg in Cli::command().get_arguments() {
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let cli = Cli::parse_from(["load", "http://127.0.0.1:8080/v1/infer"]);
        let config = LoadConfig::from_args(&cli.load).unwrap();
        assert_eq!(config.rate_per_s, 100.0);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.mode, LoadMode::OpenConstant);
        assert_eq!(config.method, Method::GET);
    }

    #[test]
    fn find_max_rate_needs_an_slo_and_excludes_closed_loop() {
        assert!(Cli::try_parse_from(["load", "http://h/", "--find-max-rate"]).is_err());
        assert!(Cli::try_parse_from([
            "load",
            "http://h/",
            "--closed-loop",
            "--find-max-rate",
            "--slo-p99",
            "10ms"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["load", "http://h/", "--stream", "--closed-loop"]).is_err());
        assert!(Cli::try_parse_from([
            "load",
            "http://h/",
            "--stream",
            "--find-max-rate",
            "--slo-p99",
            "10ms"
        ])
        .is_err());
        let cli = Cli::parse_from(["load", "http://h/", "--poisson", "--seed", "9"]);
        assert_eq!(
            LoadConfig::from_args(&cli.load).unwrap().mode,
            LoadMode::OpenPoisson
        );
    }

    #[test]
    fn a_missing_body_file_is_a_body_file_error() {
        let cli = Cli::parse_from(["load", "http://h/", "--body", "/nonexistent/body.json"]);
        let err = LoadConfig::from_args(&cli.load).unwrap_err();
        assert!(matches!(err, LoadError::BodyFile { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "reading the request body file /nonexistent/body.json"
        );
    }
}
