//! Benchmarks of the harness itself: what the worker protocol costs per sample, what the
//! live observer of `run --prometheus` costs the runner per batch of samples, and how
//! much of a tenant's throughput survives the runner (process, barrier, sample stream),
//! with and without that observer, compared with the same loop run bare. Goal: 99% or
//! better.
//!
//! `cargo bench --bench harness`; runs on any machine (CPU fixture only).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use gpushare::isolation::ProcessIsolation;
use gpushare::live::{LiveStudy, StudyLabels};
use gpushare::runner::{run_study, Observer, Progress, StudyInput, TenantPhase};
use gpushare::scenario::{self, Plan};
use gpushare::worker::protocol::{self, FromWorker, StepSample, VERSION};
use gpushare::workload::{self, ParamValue, Params};

fn samples(n_samples: usize) -> Vec<StepSample> {
    (0..n_samples)
        .map(|i| StepSample {
            end_s: i as f64 * 1e-3,
            step_s: 1.0001e-3,
            items: 64,
            latency_s: None,
            failed: 0,
        })
        .collect()
}

fn protocol_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol");
    for n_samples in [1usize, 100] {
        let msg = FromWorker::Samples {
            v: VERSION,
            samples: samples(n_samples),
        };
        group.throughput(Throughput::Elements(n_samples as u64));
        group.bench_with_input(
            BenchmarkId::new("encode+decode", n_samples),
            &msg,
            |b, msg| {
                b.iter(|| {
                    let line = protocol::encode(msg);
                    protocol::decode_from_worker(line.trim_end()).unwrap()
                })
            },
        );
    }
    group.finish();
}

/// What `run --prometheus` adds to the runner for each batch of samples a worker sends.
fn observer_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("live-observer");
    let scenario = scenario::parse(Path::new("o.toml"), &scenario_text()).unwrap();
    let plan = Plan::expand(&scenario);
    let live = LiveStudy::new(
        StudyLabels {
            study: "bench".into(),
            scenario: scenario.name.clone(),
        },
        plan.clone(),
        None,
    );
    live.run_started(0, &plan.runs[0]);
    live.phase(&[0], TenantPhase::Measuring);
    for n_samples in [1usize, 100] {
        let batch = samples(n_samples);
        group.throughput(Throughput::Elements(n_samples as u64));
        group.bench_with_input(
            BenchmarkId::new("samples", n_samples),
            &batch,
            |b, batch| b.iter(|| live.samples(0, batch)),
        );
    }
    // One scrape's text, of a run with one tenant 200 batches in.
    group.throughput(Throughput::Elements(1));
    group.bench_function("render", |b| b.iter(|| live.render()));
    group.finish();
}

const WINDOW_S: f64 = 5.0;
const STEP_MS: f64 = 1.0;

/// Items per second of a 1 ms `cpu.synthetic` loop run in this process, no harness.
fn bare_throughput() -> f64 {
    let params = Params([("step_ms".to_string(), ParamValue::Float(STEP_MS))].into());
    let mut w = workload::build("cpu.synthetic", &params, 1).unwrap();
    w.prepare(Duration::ZERO).unwrap();
    let start = Instant::now();
    let mut items = 0;
    while start.elapsed().as_secs_f64() < WINDOW_S {
        items += w.step().unwrap().items;
    }
    items as f64 / start.elapsed().as_secs_f64()
}

fn scenario_text() -> String {
    format!(
        r#"name = "harness-overhead"
[run]
warmup_s = 0.5
duration_s = {WINDOW_S}
repetitions = 1
[[modes]]
mode = "exclusive"
[[tenants]]
name = "t"
workload = "cpu.synthetic"
params = {{ step_ms = {STEP_MS} }}
"#
    )
}

/// Items per second of the same loop as a tenant under the runner, followed live by the
/// observer of `run --prometheus` when `observed`.
fn runner_throughput(observed: bool) -> f64 {
    let text = scenario_text();
    let path = Path::new("harness-overhead.toml");
    let scenario = scenario::parse(path, &text).unwrap();
    let plan = Plan::expand(&scenario);
    let out = tempfile::tempdir().unwrap();
    // GPUSHARE_BIN lets the bench run on a machine where the build path does not exist.
    let exe = std::env::var_os("GPUSHARE_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_gpushare").into(), Into::into);
    let isolation = ProcessIsolation::new(Some(exe)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut progress = Progress::hidden();
    if observed {
        let labels = StudyLabels {
            study: "bench".into(),
            scenario: scenario.name.clone(),
        };
        progress = progress.observed_by(Arc::new(LiveStudy::new(labels, plan.clone(), None)));
    }
    let study = runtime
        .block_on(run_study(
            StudyInput {
                scenario: &scenario,
                scenario_source: &text,
                scenario_path: path,
                plan: &plan,
                shard: None,
                isolation: &isolation,
                out_dir: out.path().to_path_buf(),
                flush_interval_ms: 100,
                monitor: None,
            },
            &progress,
        ))
        .unwrap();
    let analysis = gpushare::metrics::analyze(&study);
    analysis.runs[0].tenants[0].throughput_items_per_s
}

fn overhead() {
    // Alternate the two so drift of the machine affects both alike.
    let (mut bare, mut runner, mut observed) = (vec![], vec![], vec![]);
    for i in 0..4 {
        bare.push(bare_throughput());
        // Which of the two runner cases goes first alternates, as a slow stretch of the
        // machine would otherwise always hit the same one.
        if i % 2 == 0 {
            runner.push(runner_throughput(false));
            observed.push(runner_throughput(true));
        } else {
            observed.push(runner_throughput(true));
            runner.push(runner_throughput(false));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "harness overhead: 1 ms cpu.synthetic, {WINDOW_S} s windows x 4: bare {:.1} steps/s, under the runner {:.1} steps/s (ratio {:.4}), with the live observer {:.1} steps/s (ratio {:.4}) (goal >= 0.99)",
        mean(&bare),
        mean(&runner),
        mean(&runner) / mean(&bare),
        mean(&observed),
        mean(&observed) / mean(&bare),
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    protocol_cost(&mut c);
    observer_cost(&mut c);
    c.final_summary();
    overhead();
}
