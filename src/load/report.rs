//! The result of one load run ([`LoadReport`]) and its table rendering.
//!
//! Statistics stated here:
//! - Latency is from each request's *intended* send time to its last response byte, for
//!   2xx responses; in closed loop the intended time is the actual send time.
//! - A percentile p is *supported* when at least `10 / (1 - p)` samples back it (1000 for
//!   P99, 10 000 for P99.9): then about ten samples lie beyond it, so one outlier more or
//!   less moves it only a little. An unsupported percentile is still reported, flagged.
//! - Send lag is actual minus intended send time; dispatch lag is the part the generator
//!   itself caused (its timer woke late or it was denied CPU). Their difference is time
//!   spent waiting for a free connection: if it is large, raise `--connections`.
//! - SLO attainment is the fraction of due requests (sent plus dropped) answered 2xx
//!   within the target: errors and dropped requests count as misses.
//!
//! Must not measure; it only summarizes a finished run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tabled::builder::Builder;
use tabled::settings::Style;

use super::config::{LoadConfig, LoadMode};
use super::recorder::{ErrorCounts, Recorder};

/// Samples needed before percentile `quantile` is stated as supported: `10 / (1 - q)`.
pub fn required_samples(quantile: f64) -> u64 {
    (10.0 / (1.0 - quantile)).round() as u64
}

/// Everything one load run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// URL loaded.
    pub url: String,
    /// `open-constant`, `open-poisson` or `closed-loop`.
    pub mode: LoadMode,
    /// Intended rate in requests per second; absent in closed loop.
    pub target_rate_req_per_s: Option<f64>,
    /// Requests sent per second: sent / max(duration, time of the last send). Falls below
    /// the target when the generator could not keep up.
    pub achieved_rate_req_per_s: f64,
    /// 2xx responses per second over the whole run (start to last response).
    pub throughput_ok_per_s: f64,
    /// Scheduled duration, in seconds.
    pub duration_s: f64,
    /// From start to the last response, in seconds.
    pub elapsed_s: f64,
    /// Keep-alive connections used.
    pub n_connections: usize,
    /// Generator threads used.
    pub n_threads: usize,
    /// Seed of the Poisson schedule.
    pub seed: u64,
    /// Requests the schedule asked for (closed loop: requests sent).
    pub n_scheduled: u64,
    /// Requests sent.
    pub n_sent: u64,
    /// 2xx responses.
    pub n_ok: u64,
    /// Failed requests (sum of `errors`).
    pub n_errors: u64,
    /// Requests not sent: more than `drop_after_ms` behind schedule when a connection or
    /// the dispatcher reached them, or due while every connection was busy and the queue
    /// full.
    pub n_dropped: u64,
    /// Of the dropped requests, those the generator itself could not issue within
    /// `drop_after_ms` of their intended time: it could not keep its schedule, so the
    /// server was not loaded as asked (`gpushare load` exits 3).
    #[serde(default)]
    pub n_behind_schedule: u64,
    /// Requests sent more than `late_after_ms` behind schedule.
    pub n_late: u64,
    /// Send lag above which a request counts as late, in ms.
    pub late_after_ms: f64,
    /// Send lag above which a request is dropped, in ms.
    pub drop_after_ms: f64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Actual minus intended send time (open loop only), in ms: the generator's timing
    /// error plus any wait for a free connection.
    pub send_lag_ms: Option<LagSummary>,
    /// Dispatch minus intended time (open loop only), in ms: the generator's own timing
    /// error (timer precision, CPU it was denied), without connection waits.
    pub dispatch_lag_ms: Option<LagSummary>,
    /// Latency of 2xx responses from the intended send time, in ms.
    pub latency_ms: LatencySummary,
    /// SLO figures, when a target was given.
    pub slo: Option<SloSummary>,
}

/// Send-lag distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagSummary {
    /// Median lag, ms.
    pub p50_ms: f64,
    /// 99th percentile lag, ms.
    pub p99_ms: f64,
    /// Largest lag, ms.
    pub max_ms: f64,
}

/// Latency distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples (2xx responses).
    pub n_samples: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Whether at least 1000 samples back the P99.
    pub p99_supported: bool,
    /// Whether at least 10 000 samples back the P99.9.
    pub p999_supported: bool,
}

/// SLO attainment against a P99 target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSummary {
    /// The P99 target, ms.
    pub target_p99_ms: f64,
    /// 2xx responses within the target.
    pub n_within: u64,
    /// n_within / (sent + dropped); errors and drops are misses.
    pub attainment_fraction: f64,
    /// Whether the P99 of 2xx latencies is within the target.
    pub p99_met: bool,
    /// Whether at least 99% of due requests were answered 2xx within the target (the
    /// stricter test: also fails on errors and drops).
    pub attainment_met: bool,
}

impl LoadReport {
    /// Summarizes a finished run.
    pub(crate) fn from_run(
        config: &LoadConfig,
        start: Instant,
        recorder: &Recorder,
        n_scheduled: u64,
    ) -> Self {
        let duration_s = config.duration.as_secs_f64();
        let since_start = |instant: Option<Instant>| {
            instant.map_or(0.0, |at| at.saturating_duration_since(start).as_secs_f64())
        };
        let send_span_s = since_start(recorder.last_send).max(duration_s);
        let elapsed_s = since_start(recorder.last_done).max(duration_s);
        let open_loop = config.mode != LoadMode::ClosedLoop;
        let latency_ms = latency_summary(&recorder.latency_us);
        let slo = config.slo_p99.map(|target| {
            let n_due = recorder.n_sent + recorder.n_dropped;
            let attainment_fraction = if n_due == 0 {
                0.0
            } else {
                recorder.n_within_slo as f64 / n_due as f64
            };
            SloSummary {
                target_p99_ms: ms(target),
                n_within: recorder.n_within_slo,
                attainment_fraction,
                p99_met: latency_ms.n_samples > 0 && latency_ms.p99_ms <= ms(target),
                attainment_met: n_due > 0 && attainment_fraction >= 0.99,
            }
        });
        Self {
            url: config.url.clone(),
            mode: config.mode,
            target_rate_req_per_s: open_loop.then_some(config.rate_per_s),
            achieved_rate_req_per_s: recorder.n_sent as f64 / send_span_s,
            throughput_ok_per_s: recorder.n_ok as f64 / elapsed_s,
            duration_s,
            elapsed_s,
            n_connections: config.connections,
            n_threads: config.threads.clamp(1, config.connections.max(1)),
            seed: config.seed,
            n_scheduled,
            n_sent: recorder.n_sent,
            n_ok: recorder.n_ok,
            n_errors: recorder.errors.total(),
            n_dropped: recorder.n_dropped,
            n_behind_schedule: recorder.n_behind_schedule,
            n_late: recorder.n_late,
            late_after_ms: ms(config.late_after),
            drop_after_ms: ms(config.drop_after),
            errors: recorder.errors.clone(),
            send_lag_ms: open_loop.then(|| lag_summary(&recorder.send_lag_us)),
            dispatch_lag_ms: open_loop.then(|| lag_summary(&recorder.dispatch_lag_us)),
            latency_ms,
            slo,
        }
    }

    /// Whether the generator issued every request within `drop_after_ms` of its time.
    pub fn kept_schedule(&self) -> bool {
        self.n_behind_schedule == 0
    }

    /// One sentence saying that the generator could not keep its schedule, and what to
    /// change; `None` when it kept it.
    pub fn behind_schedule_sentence(&self) -> Option<String> {
        (!self.kept_schedule()).then(|| {
            format!(
                "the load generator could not keep its schedule: {} of {} scheduled requests \
                 were more than {} ms late before it could issue them and were not sent, so \
                 the server was not loaded at {} req/s; lower --rate, add --threads or give \
                 the generator more CPU",
                self.n_behind_schedule,
                self.n_scheduled,
                self.drop_after_ms,
                self.target_rate_req_per_s.unwrap_or_default()
            )
        })
    }

    /// Renders the report as a two-column table.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 2]> = vec![
            ["url".into(), self.url.clone()],
            [
                "mode".into(),
                format!(
                    "{} ({} connections, {} threads, seed {})",
                    mode_name(self.mode),
                    self.n_connections,
                    self.n_threads,
                    self.seed
                ),
            ],
            [
                "duration".into(),
                format!("{:.2} s (elapsed {:.2} s)", self.duration_s, self.elapsed_s),
            ],
        ];
        let rate = match self.target_rate_req_per_s {
            Some(target) => format!(
                "target {target:.1}, achieved {:.1}",
                self.achieved_rate_req_per_s
            ),
            None => format!("achieved {:.1}", self.achieved_rate_req_per_s),
        };
        rows.push(["rate (req/s)".into(), rate]);
        rows.push([
            "ok throughput (req/s)".into(),
            format!("{:.1}", self.throughput_ok_per_s),
        ]);
        rows.push([
            "requests".into(),
            format!(
                "scheduled {}, sent {}, ok {}, errors {}, dropped {}",
                self.n_scheduled, self.n_sent, self.n_ok, self.n_errors, self.n_dropped
            ),
        ]);
        if self.n_errors > 0 {
            rows.push(["errors".into(), error_breakdown(&self.errors)]);
        }
        if self.n_behind_schedule > 0 {
            rows.push([
                "behind schedule".into(),
                format!(
                    "{} dropped: the generator could not issue them in time",
                    self.n_behind_schedule
                ),
            ]);
        }
        if let Some(lag) = &self.send_lag_ms {
            rows.push([
                "send lag (ms)".into(),
                format!(
                    "p50 {:.3}, p99 {:.3}, max {:.3}; late (> {} ms): {}",
                    lag.p50_ms, lag.p99_ms, lag.max_ms, self.late_after_ms, self.n_late
                ),
            ]);
        }
        if let Some(lag) = &self.dispatch_lag_ms {
            rows.push([
                "dispatch lag (ms)".into(),
                format!(
                    "p50 {:.3}, p99 {:.3}, max {:.3}",
                    lag.p50_ms, lag.p99_ms, lag.max_ms
                ),
            ]);
        }
        let latency = &self.latency_ms;
        let flag = |supported: bool, quantile: f64| {
            if supported {
                String::new()
            } else {
                format!(
                    " (unsupported: {} < {} samples)",
                    latency.n_samples,
                    required_samples(quantile)
                )
            }
        };
        rows.extend([
            ["latency p50 (ms)".into(), format!("{:.3}", latency.p50_ms)],
            ["latency p90 (ms)".into(), format!("{:.3}", latency.p90_ms)],
            ["latency p95 (ms)".into(), format!("{:.3}", latency.p95_ms)],
            [
                "latency p99 (ms)".into(),
                format!("{:.3}{}", latency.p99_ms, flag(latency.p99_supported, 0.99)),
            ],
            [
                "latency p99.9 (ms)".into(),
                format!(
                    "{:.3}{}",
                    latency.p999_ms,
                    flag(latency.p999_supported, 0.999)
                ),
            ],
            ["latency max (ms)".into(), format!("{:.3}", latency.max_ms)],
        ]);
        if let Some(slo) = &self.slo {
            rows.push([
                format!("SLO p99 <= {} ms", slo.target_p99_ms),
                format!(
                    "attainment {:.2}% ({}), p99 {}",
                    slo.attainment_fraction * 100.0,
                    if slo.attainment_met { "met" } else { "missed" },
                    if slo.p99_met { "met" } else { "missed" }
                ),
            ]);
        }
        let mut builder = Builder::default();
        builder.push_record(["figure".to_owned(), "value".to_owned()]);
        for row in rows {
            builder.push_record(row);
        }
        let mut table = builder.build();
        table.with(Style::sharp());
        table.to_string()
    }
}

fn mode_name(mode: LoadMode) -> &'static str {
    match mode {
        LoadMode::OpenConstant => "open loop, constant rate",
        LoadMode::OpenPoisson => "open loop, Poisson arrivals",
        LoadMode::ClosedLoop => "closed loop",
    }
}

fn error_breakdown(errors: &ErrorCounts) -> String {
    let mut parts = Vec::new();
    for (name, count) in [
        ("connect", errors.connect),
        ("timeout", errors.timeout),
        ("io", errors.io),
    ] {
        if count > 0 {
            parts.push(format!("{name} {count}"));
        }
    }
    for (code, count) in &errors.status {
        parts.push(format!("HTTP {code} x{count}"));
    }
    parts.join(", ")
}

fn lag_summary(histogram: &Histogram<u64>) -> LagSummary {
    LagSummary {
        p50_ms: quantile_ms(histogram, 0.5),
        p99_ms: quantile_ms(histogram, 0.99),
        max_ms: max_ms(histogram),
    }
}

fn latency_summary(histogram: &Histogram<u64>) -> LatencySummary {
    let n_samples = histogram.len();
    LatencySummary {
        n_samples,
        mean_ms: if n_samples == 0 {
            0.0
        } else {
            histogram.mean() / 1000.0
        },
        p50_ms: quantile_ms(histogram, 0.5),
        p90_ms: quantile_ms(histogram, 0.9),
        p95_ms: quantile_ms(histogram, 0.95),
        p99_ms: quantile_ms(histogram, 0.99),
        p999_ms: quantile_ms(histogram, 0.999),
        max_ms: max_ms(histogram),
        p99_supported: n_samples >= required_samples(0.99),
        p999_supported: n_samples >= required_samples(0.999),
    }
}

fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() {
        0.0
    } else {
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn max_ms(histogram: &Histogram<u64>) -> f64 {
    if histogram.is_empty() {
        0.0
    } else {
        histogram.max() as f64 / 1000.0
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::Outcome;

    #[test]
    fn required_samples_follow_ten_over_one_minus_p() {
        assert_eq!(required_samples(0.99), 1000);
        assert_eq!(required_samples(0.999), 10_000);
        assert_eq!(required_samples(0.5), 20);
    }

    fn run_with(latencies_ms: &[u64], dropped: u64, errors: u64) -> LoadReport {
        let mut config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        config.slo_p99 = Some(Duration::from_millis(10));
        let start = Instant::now();
        let mut recorder = Recorder::new();
        for &latency in latencies_ms {
            recorder.record_send(start, Some(Duration::ZERO), config.late_after);
            let latency = Duration::from_millis(latency);
            recorder.record_outcome(Outcome::Ok, latency, start, config.slo_p99);
        }
        for _ in 0..errors {
            recorder.record_send(start, Some(Duration::ZERO), config.late_after);
            recorder.record_outcome(Outcome::Status(503), Duration::ZERO, start, config.slo_p99);
        }
        for _ in 0..dropped {
            recorder.record_dropped();
        }
        let n = latencies_ms.len() as u64 + dropped + errors;
        LoadReport::from_run(&config, start, &recorder, n)
    }

    #[test]
    fn slo_attainment_counts_errors_and_drops_as_misses() {
        // 990 fast, 10 slow: exactly 99% within 10 ms.
        let mut latencies = vec![1u64; 990];
        latencies.extend([20u64; 10]);
        let report = run_with(&latencies, 0, 0);
        let slo = report.slo.clone().unwrap();
        assert_eq!(slo.n_within, 990);
        assert!((slo.attainment_fraction - 0.99).abs() < 1e-12);
        assert!(slo.attainment_met);
        assert!(slo.p99_met);
        assert!(report.latency_ms.p99_supported);

        // Five more drops and five errors: 990 / 1010 within target, below 99%.
        let report = run_with(&latencies, 5, 5);
        let slo = report.slo.unwrap();
        assert!((slo.attainment_fraction - 990.0 / 1010.0).abs() < 1e-12);
        assert!(!slo.attainment_met);
        assert_eq!(report.n_errors, 5);
        assert_eq!(report.n_dropped, 5);
    }

    #[test]
    fn p99_with_few_samples_is_flagged() {
        let report = run_with(&[1; 100], 0, 0);
        assert!(!report.latency_ms.p99_supported);
        assert!(report
            .to_table()
            .contains("(unsupported: 100 < 1000 samples)"));
    }

    #[test]
    fn a_run_behind_schedule_says_so_in_one_sentence() {
        let config = LoadConfig::new("http://127.0.0.1:1/").unwrap();
        let start = Instant::now();
        let mut recorder = Recorder::new();
        recorder.record_behind_schedule(7);
        let report = LoadReport::from_run(&config, start, &recorder, 10);
        assert!(!report.kept_schedule());
        assert_eq!(report.n_dropped, 7);
        assert_eq!(
            report.behind_schedule_sentence().unwrap(),
            "the load generator could not keep its schedule: 7 of 10 scheduled requests were \
             more than 1000 ms late before it could issue them and were not sent, so the \
             server was not loaded at 100 req/s; lower --rate, add --threads or give the \
             generator more CPU"
        );
        assert!(report
            .to_table()
            .contains("7 dropped: the generator could not issue them in time"));
        let on_time = run_with(&[1, 2], 1, 0);
        assert!(on_time.kept_schedule());
        assert_eq!(on_time.behind_schedule_sentence(), None);
        assert!(!on_time.to_table().contains("behind schedule"));
    }

    #[test]
    fn report_round_trips_through_json() {
        let report = run_with(&[1, 2, 3], 1, 1);
        let json = serde_json::to_string(&report).unwrap();
        let back: LoadReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert!(json.contains("\"mode\":\"open-constant\""));
        assert!(json.contains("\"status\":{\"503\":1}"));
    }
}
