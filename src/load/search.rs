//! `--find-max-rate`: the highest open-loop rate whose P99 meets an SLO.
//!
//! Each probe is a full open-loop run at one rate. A probe *meets* the SLO when at least
//! 99% of its due requests were answered 2xx within the target (errors and dropped
//! requests count as misses, so a server shedding load with 503s does not pass) and its
//! P99 is supported (at least 1000 samples). The search doubles the rate from `--rate`
//! until a probe fails (halving instead if the first one fails), then bisects between the
//! highest passing and the lowest failing rate until they are within `precision_fraction`
//! of each other or `max_probes` probes ran. Latency grows with load, but noise can make a
//! probe above a failed one pass; bisection assumes monotonicity, so the answer is "a rate
//! that met the SLO, with a failing rate at most `precision_fraction` above it". A probe
//! that misses because the generator fell behind its schedule ends the search: the server
//! was not loaded at that rate, and `gpushare load` says so and exits 3.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{LoadConfig, LoadMode};
use super::error::LoadError;
use super::generator::run_load;
use super::report::{required_samples, LoadReport};

/// Search settings.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// The P99 latency target.
    pub slo_p99: Duration,
    /// Most probes to run (each lasts the config's duration).
    pub max_probes: u32,
    /// Stop when the failing rate is within this fraction above the passing one.
    pub precision_fraction: f64,
}

impl SearchConfig {
    /// Target `slo_p99`, at most 12 probes, 5% precision.
    pub fn new(slo_p99: Duration) -> Self {
        Self {
            slo_p99,
            max_probes: 12,
            precision_fraction: 0.05,
        }
    }
}

/// One probe of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Rate probed, requests per second.
    pub rate_req_per_s: f64,
    /// Rate actually sent, requests per second.
    pub achieved_rate_req_per_s: f64,
    /// P99 latency of 2xx responses, ms.
    pub p99_ms: f64,
    /// Fraction of due requests answered 2xx within the target.
    pub attainment_fraction: f64,
    /// Whether at least 1000 samples back the P99.
    pub p99_supported: bool,
    /// Failed requests.
    pub n_errors: u64,
    /// Requests dropped because the generator fell behind.
    pub n_dropped: u64,
    /// Whether the generator issued every request on schedule; when it did not, the
    /// server was not loaded at the probed rate (absent in reports before it: true).
    #[serde(default = "on_schedule")]
    pub kept_schedule: bool,
    /// Whether the probe met the SLO (see the module docs).
    pub met: bool,
}

fn on_schedule() -> bool {
    true
}

impl Probe {
    fn from_report(rate_req_per_s: f64, report: &LoadReport) -> Self {
        let attainment_fraction = report
            .slo
            .as_ref()
            .map_or(0.0, |slo| slo.attainment_fraction);
        let p99_supported = report.latency_ms.p99_supported;
        Self {
            rate_req_per_s,
            achieved_rate_req_per_s: report.achieved_rate_req_per_s,
            p99_ms: report.latency_ms.p99_ms,
            attainment_fraction,
            p99_supported,
            n_errors: report.n_errors,
            n_dropped: report.n_dropped,
            kept_schedule: report.kept_schedule(),
            met: p99_supported && attainment_fraction >= 0.99,
        }
    }

    /// One line for progress output.
    pub fn to_line(&self) -> String {
        format!(
            "probe {:>10.1} req/s: achieved {:.1} req/s, p99 {:.3} ms, attainment {:.2}%, errors {}, dropped {} -> {}",
            self.rate_req_per_s,
            self.achieved_rate_req_per_s,
            self.p99_ms,
            self.attainment_fraction * 100.0,
            self.n_errors,
            self.n_dropped,
            match (self.met, self.kept_schedule) {
                (true, _) => "meets SLO",
                (false, true) => "misses SLO",
                (false, false) => "misses SLO: the generator fell behind, not the server",
            }
        )
    }
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchStop {
    /// Passing and failing rates are within the precision.
    Converged,
    /// The probe budget ran out.
    MaxProbes,
    /// Even the lowest rate whose P99 can be supported missed the SLO.
    NoSupportedRateMeets,
    /// A probe missed because the generator could not send at its rate: that rate is the
    /// generator's limit, and the server's lies somewhere above the highest passing rate.
    GeneratorBehind,
}

/// Result of `--find-max-rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxRateReport {
    /// The P99 target, ms.
    pub slo_p99_ms: f64,
    /// Highest probed rate that met the SLO, requests per second; absent if none did.
    pub max_rate_req_per_s: Option<f64>,
    /// Lowest probed rate that missed it, requests per second; absent if none did.
    pub min_failing_rate_req_per_s: Option<f64>,
    /// Why the search stopped.
    pub stopped: SearchStop,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
}

impl MaxRateReport {
    /// One sentence saying that the search stopped at the generator's limit, and what to
    /// change; `None` when every probe kept its schedule.
    pub fn behind_schedule_sentence(&self) -> Option<String> {
        let probe = self.probes.iter().find(|probe| !probe.kept_schedule)?;
        let found = self.max_rate_req_per_s.map_or_else(
            || "no probed rate met the SLO".to_owned(),
            |rate| format!("the server met the SLO at {rate:.1} req/s"),
        );
        Some(format!(
            "the search stopped at {:.1} req/s because the load generator could not keep its \
             schedule there ({} requests not sent), so that is the generator's limit, not the \
             server's; {found}; add --threads or give the generator more CPU to search higher",
            probe.rate_req_per_s, probe.n_dropped
        ))
    }
}

/// Searches for the highest rate meeting `search.slo_p99`, starting at `config.rate_per_s`
/// and calling `on_probe` after each probe.
pub async fn find_max_rate(
    config: &LoadConfig,
    search: &SearchConfig,
    mut on_probe: impl FnMut(&Probe),
) -> Result<MaxRateReport, LoadError> {
    config.validate()?;
    if config.mode == LoadMode::ClosedLoop {
        return Err(LoadError::Config {
            reason: "--find-max-rate needs open-loop load, not --closed-loop".to_owned(),
        });
    }
    let min_rate = required_samples(0.99) as f64 / config.duration.as_secs_f64();
    if config.rate_per_s < min_rate {
        return Err(LoadError::Config {
            reason: format!(
                "a probe of {} req/s for {:?} gives fewer than {} samples, too few for a P99; \
                 start at --rate {min_rate:.0} or more, or lengthen --duration",
                config.rate_per_s,
                config.duration,
                required_samples(0.99)
            ),
        });
    }
    let mut probe_config = config.clone();
    probe_config.slo_p99 = Some(search.slo_p99);
    let mut passing: Option<f64> = None;
    let mut failing: Option<f64> = None;
    let mut probes = Vec::new();
    let mut rate = config.rate_per_s;
    let mut stopped = SearchStop::MaxProbes;
    for _ in 0..search.max_probes {
        probe_config.rate_per_s = rate;
        let report = run_load(&probe_config).await?;
        let probe = Probe::from_report(rate, &report);
        on_probe(&probe);
        if probe.met {
            passing = Some(passing.map_or(rate, |p| p.max(rate)));
        } else {
            failing = Some(failing.map_or(rate, |f| f.min(rate)));
        }
        let generator_behind = !probe.met && !probe.kept_schedule;
        probes.push(probe);
        if generator_behind {
            // Any rate above would fall behind too, and one below would bisect towards
            // the generator's limit as if it were the server's.
            stopped = SearchStop::GeneratorBehind;
            break;
        }
        rate = match (passing, failing) {
            (Some(pass), None) => pass * 2.0,
            (None, Some(fail)) if fail / 2.0 < min_rate => {
                stopped = SearchStop::NoSupportedRateMeets;
                break;
            }
            (None, Some(fail)) => fail / 2.0,
            (Some(pass), Some(fail)) if (fail - pass) <= search.precision_fraction * pass => {
                stopped = SearchStop::Converged;
                break;
            }
            (Some(pass), Some(fail)) => (pass + fail) / 2.0,
            (None, None) => unreachable!("every probe either passes or fails"),
        };
    }
    Ok(MaxRateReport {
        slo_p99_ms: search.slo_p99.as_secs_f64() * 1000.0,
        max_rate_req_per_s: passing,
        min_failing_rate_req_per_s: failing,
        stopped,
        probes,
    })
}
