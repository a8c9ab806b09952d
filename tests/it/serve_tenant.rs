//! The `serve.<model>` tenant through `gpushare run`, with the CPU fixture `serve.delay`
//! (a 5 ms sleep per batch) next to `cpu.synthetic`: its throughput is its request rate,
//! its latencies are the known service time, its SLO verdict is stated, an overloaded one
//! fails with its failures by kind, and neither the server (threads of the worker) nor the
//! load generator (a child process of the worker) outlives a run, even when the runner is
//! killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{gpushare, marked_commands, marked_processes, stderr, stdout, write_scenario};

/// A scenario with a `serve.delay` tenant `api` (params given) and a `cpu.synthetic`
/// tenant `spin` that takes `spin_setup_ms` to get ready.
fn scenario(api_params: &str, duration_s: f64, spin_setup_ms: f64) -> String {
    format!(
        r#"
name = "serve-tenant"
description = "test"

[run]
warmup_s = 0.5
duration_s = {duration_s}
repetitions = 1
min_samples = 50
ready_timeout_s = 20
stop_timeout_s = 5

[[modes]]
mode = "time-slicing"

[[tenants]]
name = "api"
workload = "serve.delay"
params = {{ {api_params} }}
slo = {{ percentile = 90.0, target_ms = 20.0 }}

[[tenants]]
name = "spin"
workload = "cpu.synthetic"
params = {{ step_ms = 2.0, setup_ms = {spin_setup_ms} }}
"#
    )
}

/// Waits up to `limit` for `done`, polling.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

fn tenant<'a>(figures: &'a Value, name: &str) -> &'a Value {
    figures["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tenant {name} in {figures}"))
}

/// Runs the scenario `text` from `dir` with the test marker `marker` in the runner's (so
/// its workers' and generators') environment; returns the output and the study directory.
fn run_study(dir: &Path, text: &str, marker: &str) -> (Output, PathBuf) {
    let path = write_scenario(dir, "s.toml", text);
    let out = dir.join("study");
    let output = gpushare()
        .args(["run", "--out"])
        .arg(&out)
        .arg(&path)
        .env("GPUSHARE_TEST_MARKER", marker)
        .output()
        .unwrap();
    (output, out)
}

#[test]
fn a_serving_tenant_reports_its_rate_its_service_time_and_an_slo_verdict() {
    let dir = tempfile::tempdir().unwrap();
    // 100 requests/s, 10 ms apart, each served in 5 ms: no request waits for another, so
    // latency is the service time plus loopback HTTP. `spin` takes 1 s to get ready, so
    // the load runs 1 s between the tenant's Ready and Go: those requests must not count.
    let text = scenario(
        "rate = 100.0, delay_ms = 5.0, max_queue_delay_ms = 0.0",
        2.0,
        1000.0,
    );
    let (output, out) = run_study(dir.path(), &text, "serve-ok");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        marked_processes("serve-ok").is_empty(),
        "left behind: {:?}",
        marked_commands("serve-ok")
    );
    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let runs = study["analysis"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let records = study["runs"].as_array().unwrap();
    assert_eq!(records.len(), runs.len());
    for (run, record) in runs.iter().zip(records) {
        assert_eq!(run["verdict"]["valid"], true, "{}", run["verdict"]);
        let api = tenant(run, "api");
        assert_eq!(api["item"], "requests");
        assert_eq!(api["device"], "cpu");
        let throughput = api["throughput_items_per_s"].as_f64().unwrap();
        assert!((95.0..=105.0).contains(&throughput), "{api}");
        assert!(api.get("failed").is_none(), "{api}");
        // The sleep is a floor; the rest is HTTP on loopback and a debug build, under
        // 1 ms on an idle 2-core machine (P50 5.8 ms measured), more when other tests
        // share its cores (P50 10.5 ms with a build beside the tests). Three times the
        // service time would mean requests queue.
        let p50 = api["latency"]["p50_ms"].as_f64().unwrap();
        let p90 = api["latency"]["p90_ms"].as_f64().unwrap();
        assert!((5.0..15.0).contains(&p50), "{api}");
        assert!((5.0..20.0).contains(&p90), "{api}");
        let slo = &api["slo"];
        assert_eq!(slo["met"], true, "{slo}");
        assert_eq!(slo["supported"], true, "{slo}");
        assert_eq!(slo["percentile"], 90.0);
        // One sample per request, each one item with its latency.
        let samples = &tenant(record, "api")["samples"];
        let n = samples["end_s"].as_array().unwrap().len();
        assert!(n >= 190, "{n} requests");
        assert_eq!(samples["latency_s"].as_array().unwrap().len(), n);
        assert!(samples["items"].as_array().unwrap().iter().all(|i| i == 1));
        // No burst of stale completions at Go: the load of the second before it (waiting
        // for `spin`) was discarded, so the first 100 ms hold about 10 requests.
        let early = samples["end_s"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.as_f64().unwrap() < 0.1)
            .count();
        assert!(early <= 20, "{early} requests in the first 100 ms");
    }
    let report = stdout(&output);
    assert!(report.contains("serve.delay (CPU)"), "{report}");
    assert!(report.contains("requests/s"), "{report}");
    assert!(report.contains("SLO met"), "{report}");
}

#[test]
fn an_overloaded_serving_tenant_fails_its_run_with_the_failures_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    // 200 requests/s at a server that runs one 50 ms request at a time with one queue
    // place: most requests are refused with 503.
    let text = scenario(
        "rate = 200.0, delay_ms = 50.0, max_batch_size = 1, queue_capacity = 1",
        3.0,
        0.0,
    );
    let (output, out) = run_study(dir.path(), &text, "serve-overload");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    for run in study["runs"].as_array().unwrap() {
        assert_eq!(run["status"], "failed");
        let failure = run["failure"].as_str().unwrap();
        assert!(
            failure.contains("worker `api` failed during the measured window: running step ")
                && failure.contains(" requests failed (")
                && failure.contains(" HTTP 503")
                && failure.contains("lower `rate`"),
            "{failure}"
        );
    }
    assert!(
        marked_processes("serve-overload").is_empty(),
        "left behind: {:?}",
        marked_commands("serve-overload")
    );
}

#[test]
fn a_killed_runner_takes_the_server_and_the_load_generator_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "s.toml",
        &scenario("rate = 100.0, delay_ms = 5.0", 30.0, 0.0),
    );
    let mut runner = Command::new(env!("CARGO_BIN_EXE_gpushare"))
        .args(["run", "--out"])
        .arg(dir.path().join("study"))
        .arg(&path)
        .env("GPUSHARE_TEST_MARKER", "serve-sigkill")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let is_generator = |cmdline: &str| cmdline.contains(" load ") && cmdline.contains("--stream");
    // The runner, the serving worker and its generator.
    let generator_seen = wait_for(Duration::from_secs(20), || {
        marked_commands("serve-sigkill")
            .iter()
            .any(|(_, cmdline)| is_generator(cmdline))
    });
    assert!(generator_seen, "{:?}", marked_commands("serve-sigkill"));
    std::thread::sleep(Duration::from_millis(300));
    runner.kill().unwrap();
    runner.wait().unwrap();
    let all_gone = wait_for(Duration::from_secs(5), || {
        marked_processes("serve-sigkill").is_empty()
    });
    assert!(all_gone, "orphans: {:?}", marked_commands("serve-sigkill"));
}
