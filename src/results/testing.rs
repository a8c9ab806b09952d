//! Hand-built studies for unit tests of the layers above (`metrics`, `report`), so each
//! layer tests its own part of the same study without importing a layer above it.

use std::path::Path;

use super::schema::{RunRecord, RunStatus, Samples, Study, TenantRecord};
use crate::scenario::{self, Plan};
use crate::sharing::ModeSetting;
use crate::worker::protocol::WorkerSummary;
use crate::workload::Device;

/// A tenant that completed `steps` steps of one item evenly over a 1 s window.
pub fn tenant(name: &str, steps: usize) -> TenantRecord {
    let end_s: Vec<f64> = (1..=steps).map(|i| i as f64 / steps as f64).collect();
    TenantRecord {
        name: name.into(),
        workload: "cpu.synthetic".into(),
        device: Device::Gpu,
        item: "steps".into(),
        seed: 0,
        prepare_s: None,
        samples: Samples {
            step_s: vec![1.0 / steps as f64; steps],
            items: vec![1; steps],
            end_s,
            latency_s: vec![],
            failed: vec![],
        },
        summary: Some(WorkerSummary {
            window_s: 1.0,
            steps: steps as u64,
            items: steps as u64,
            failed: 0,
            memory_peak_bytes: None,
        }),
        exit: None,
        error: None,
    }
}

/// A completed run of `tenants` in configuration c0, without GPU samples, with the id the
/// plan gives it (`{mode}/c0/r{repetition}`).
pub fn run(mode: ModeSetting, repetition: u32, tenants: Vec<TenantRecord>) -> RunRecord {
    RunRecord {
        id: format!("{mode}/c0/r{repetition}"),
        config_idx: 0,
        mode,
        repetition,
        status: RunStatus::Completed,
        failure: None,
        mode_record: Default::default(),
        started_s: 0.0,
        elapsed_s: 1.0,
        tenants,
        monitor: None,
        monitor_note: None,
        windows: vec![],
    }
}

/// A study of `source` (a scenario file) with these runs.
pub fn study(source: &str, runs: Vec<RunRecord>) -> Study {
    // Test scenarios are written to be valid.
    let scenario = scenario::parse(Path::new("s.toml"), source).expect("a valid test scenario");
    let plan = Plan::expand(&scenario);
    Study {
        schema_version: super::SCHEMA_VERSION,
        scenario_source: source.into(),
        scenario_path: "s.toml".into(),
        environment: Default::default(),
        started_at: String::new(),
        finished_at: None,
        interrupted: false,
        analysis: None,
        runs,
        scenario,
        plan,
        shard: None,
    }
}

/// A scenario of one serving tenant (`api`, P90 SLO of 10 ms, 2 repetitions) under
/// `modes`.
fn serving_scenario(name: &str, modes: &[&str]) -> String {
    let modes: String = modes
        .iter()
        .map(|mode| format!("[[modes]]\nmode = \"{mode}\"\n"))
        .collect();
    format!(
        r#"name = "{name}"
[run]
duration_s = 1.0
repetitions = 2
min_samples = 10
{modes}[[tenants]]
name = "api"
workload = "cpu.synthetic"
slo = {{ percentile = 90.0, target_ms = 10.0 }}
"#
    )
}

/// A tenant recorded as a serving tenant records itself: 200 requests over 1 s,
/// `n_failed` of them failed, the others answered in `latency_ms`.
pub fn serving(n_failed: usize, latency_ms: f64) -> TenantRecord {
    let mut record = tenant("api", 200);
    record.device = Device::Cpu;
    record.item = "requests".into();
    let failed: Vec<u64> = (0..200).map(|i| u64::from(i < n_failed)).collect();
    record.samples.items = failed.iter().map(|f| 1 - f).collect();
    record.samples.latency_s = vec![latency_ms / 1e3; 200 - n_failed];
    if n_failed > 0 {
        record.samples.failed = failed;
    }
    record
}

/// A serving tenant with a P90 SLO of 10 ms, alone and time-sliced, 2 repetitions: 30 of
/// 200 requests (15%) failed in the first shared repetition, which breaks the P90 although
/// the answered ones took 5 ms; none failed in the other.
pub fn serving_study() -> Study {
    study(
        &serving_scenario("serving", &["time-slicing"]),
        vec![
            run(ModeSetting::Exclusive, 0, vec![serving(0, 5.0)]),
            run(ModeSetting::TimeSlicing, 0, vec![serving(30, 5.0)]),
            run(ModeSetting::Exclusive, 1, vec![serving(0, 5.0)]),
            run(ModeSetting::TimeSlicing, 1, vec![serving(0, 5.0)]),
        ],
    )
}

/// The serving tenant alone (answers in 5 ms), time-sliced (8 ms) and under MPS (3 ms), 2
/// repetitions, none failed: one tenant, so every mode is STP 1 and they tie, while MPS
/// leaves the most room under the 10 ms P90 target.
pub fn serving_tied_study() -> Study {
    let runs = (0..2)
        .flat_map(|rep| {
            [
                (ModeSetting::Exclusive, 5.0),
                (ModeSetting::TimeSlicing, 8.0),
                (ModeSetting::Mps(Default::default()), 3.0),
            ]
            .map(|(mode, latency_ms)| run(mode, rep, vec![serving(0, latency_ms)]))
        })
        .collect();
    study(
        &serving_scenario("serving-tied", &["time-slicing", "mps"]),
        runs,
    )
}
