//! A worker that crashes, hangs, exits early or fails marks its run FAILED with its exit
//! status and stderr; the other tenants are stopped; no process is left behind; and an
//! interrupted study writes what it has and exits 130.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    gpushare, marked_commands, marked_processes, quick_scenario, stderr, write_scenario,
};

/// Runs the quick scenario with a misbehaving tenant; returns run.json, exit code, and
/// the processes that carry this test's marker afterwards.
fn run_with_fault(
    marker: &str,
    fault_params: &str,
    extra: &[&str],
) -> (Value, Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &quick_scenario(fault_params));
    let out = dir.path().join("study");
    let output = gpushare()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .env("GPUSHARE_TEST_MARKER", marker)
        .output()
        .unwrap();
    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert!(
        marked_processes(marker).is_empty(),
        "workers left behind: {:?}",
        marked_processes(marker)
    );
    (study, output.status.code(), stderr(&output))
}

fn failures(study: &Value) -> Vec<String> {
    study["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["failure"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_crashing_worker_fails_its_runs_with_its_signal() {
    let (study, code, _) =
        run_with_fault("crash", r#", fault = "crash", fault_after_steps = 10"#, &[]);
    assert_eq!(code, Some(3));
    let failures = failures(&study);
    // Both the exclusive baseline and the shared run fail; SIGABRT is signal 6.
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in &failures {
        assert!(
            f.contains("worker `bad` exited during the measured window"),
            "{f}"
        );
        assert!(f.contains("worker `bad` was killed by signal 6"), "{f}");
    }
    // The healthy tenant was stopped in order and its measurements kept.
    let shared = &study["runs"][1];
    assert_eq!(shared["tenants"][0]["name"], "good");
    assert!(shared["tenants"][0]["summary"]["steps"].as_u64().unwrap() > 0);
}

#[test]
fn a_worker_exiting_early_reports_its_status() {
    let (study, code, _) =
        run_with_fault("exit", r#", fault = "exit", fault_after_steps = 10"#, &[]);
    assert_eq!(code, Some(3));
    let failures = failures(&study);
    // The exclusive baseline and the shared run, each with the message.
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in failures {
        assert!(f.contains("worker `bad` exited with status 3"), "{f}");
    }
}

#[test]
fn a_workload_error_is_reported_with_its_message() {
    let (study, _, _) =
        run_with_fault("error", r#", fault = "error", fault_after_steps = 10"#, &[]);
    let failures = failures(&study);
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in failures {
        assert!(
            f.contains("worker `bad` failed during the measured window: running step 10 of `cpu.synthetic`: injected fault"),
            "{f}"
        );
        assert!(f.contains("worker `bad` exited with status 2"), "{f}");
    }
}

#[test]
fn a_hanging_worker_is_killed_after_the_stop_timeout() {
    let started = Instant::now();
    let (study, code, _) =
        run_with_fault("hang", r#", fault = "hang", fault_after_steps = 10"#, &[]);
    assert_eq!(code, Some(3));
    let failures = failures(&study);
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in failures {
        assert!(
            f.contains("worker `bad` did not answer Stop within run.stop_timeout_s = 2 s (hung?) and was killed"),
            "{f}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_worker_that_never_gets_ready_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let text = quick_scenario(", setup_ms = 60000.0")
        .replace("ready_timeout_s = 10", "ready_timeout_s = 1");
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    let out = dir.path().join("study");
    let output = gpushare()
        .args(["run", "--out"])
        .arg(&out)
        .arg(&scenario)
        .env("GPUSHARE_TEST_MARKER", "ready")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let failures = failures(&study);
    assert!(
        failures[0].contains("worker `bad` did not report Ready within run.ready_timeout_s = 1 s"),
        "{failures:?}"
    );
    assert!(marked_processes("ready").is_empty());
}

#[test]
fn sigint_stops_the_study_writes_partial_results_and_leaves_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let text = quick_scenario("").replace("duration_s = 0.6", "duration_s = 30");
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    let out = dir.path().join("study");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpushare"))
        .args(["run", "--out"])
        .arg(&out)
        .arg(&scenario)
        .env("GPUSHARE_TEST_MARKER", "sigint")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run's worker is measuring: it exists (it and the runner carry
    // the marker), then give it time to start up, report Ready and be released. A torch
    // build spends about 0.9 s of CPU loading libtorch per process, and CI has 2 cores;
    // 3 s leaves most of the 30 s window still to come.
    let deadline = Instant::now() + Duration::from_secs(20);
    while marked_processes("sigint").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = marked_commands("sigint");
    assert!(
        before
            .iter()
            .any(|(_, command)| command.split_whitespace().nth(1) == Some("worker")),
        "no worker started: {before:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(study["interrupted"], true);
    assert_eq!(study["runs"][0]["status"], "interrupted");
    // What was measured before the signal is kept.
    assert!(!study["runs"][0]["tenants"][0]["samples"]["end_s"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        marked_processes("sigint").is_empty(),
        "left behind: {:?}",
        marked_processes("sigint")
    );
}

#[test]
fn a_killed_runner_takes_its_workers_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = quick_scenario("").replace("duration_s = 0.6", "duration_s = 30");
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpushare"))
        .args(["run", "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .env("GPUSHARE_TEST_MARKER", "sigkill")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while marked_processes("sigkill").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The runner and at least one worker carry the marker: otherwise "none left" below
    // would hold without the runner ever having started a worker.
    let before = marked_commands("sigkill");
    assert!(
        before
            .iter()
            .any(|(_, command)| command.split_whitespace().nth(1) == Some("worker")),
        "no worker started: {before:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marked_processes("sigkill").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        marked_processes("sigkill").is_empty(),
        "orphans: {:?}",
        marked_processes("sigkill")
    );
}
