//! The GPU machine's serving measurements (`bench/serve/*.sh`) run here on the CPU, with
//! the test.delay fixture or the tiny torch models, so a script that breaks (its shell,
//! its Python tables, its flags) fails in CI and not in a device call. Their figures here
//! are CPU fixtures, never GPU data.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::root;

/// Runs `script` from the repository root with `env`; `None` (and a note) without
/// python3, which the scripts' bodies and tables are written in.
fn run_script(script: &str, env: &[(&str, &str)], args: &[&str]) -> Option<Output> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("NOTE skipping {script}: no python3 on this machine");
        return None;
    }
    let output = Command::new("bash")
        .arg(root().join(script))
        .args(args)
        .current_dir(root())
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Some(output)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_in_flight_script_runs_both_settings_in_its_order_on_the_delay_fixture() {
    let out = tempfile::tempdir().unwrap();
    let Some(output) = run_script(
        "bench/serve/in-flight.sh",
        &[
            ("OUT", out.path().to_str().unwrap()),
            ("B", env!("CARGO_BIN_EXE_gpushare")),
            ("RATE", "200"),
            ("DUR", "1"),
            (
                "MODEL_FLAGS",
                "--model test.delay --input-shape 128 --dtype i64 --delay 2ms",
            ),
        ],
        &[],
    ) else {
        return;
    };
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let settings: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("in flight "))
        .map(|rest| &rest[..1])
        .collect();
    assert_eq!(settings, ["2", "1", "1", "2"], "{stdout}");
    for (run, inflight) in [(1, 2), (2, 1), (3, 1), (4, 2)] {
        let report = json(
            &out.path()
                .join(format!("p99-{run}-inflight{inflight}.json")),
        );
        assert!(
            report["throughput_ok_per_s"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert_eq!(report["n_errors"], 0, "{report}");
        let metrics = std::fs::read_to_string(
            out.path()
                .join(format!("metrics-{run}-inflight{inflight}.txt")),
        )
        .unwrap();
        assert!(metrics.contains("gpushare_serve_batch_size"), "{metrics}");
    }
}

/// Needs the torch feature: the tiny BERT-base on the CPU, one repetition of each step.
#[cfg(feature = "torch")]
#[test]
fn the_side_by_side_script_runs_on_the_cpu_with_the_tiny_models() {
    let out = tempfile::tempdir().unwrap();
    let Some(output) = run_script(
        "bench/serve/side-by-side.sh",
        &[
            ("OUT", out.path().to_str().unwrap()),
            ("DEVICE", "cpu"),
            ("TINY", "1"),
            ("BATCH", "4"),
            ("REPS", "1"),
            ("SATURATION_S", "2"),
            ("WARMUP_S", "1"),
            ("LATENCY_S", "2"),
            ("MODELS", "bert-base"),
            ("BERT_BODIES", "i64 i64:serial"),
        ],
        &[env!("CARGO_BIN_EXE_gpushare")],
    ) else {
        return;
    };
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let dir = out.path().join("side-by-side");
    let table = std::fs::read_to_string(dir.join("table.txt")).unwrap();
    assert_eq!(table, stdout, "the table printed is the table kept");
    for expected in [
        "bert-base: infer.batch ",
        "serve      i64: ",
        "serve i64:serial: ",
        "against infer.batch eager",
        "per batch: mean size ",
        "P99 at ",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from:\n{table}"
        );
    }
    let runs: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let whats: Vec<&str> = runs.iter().map(|r| r["what"].as_str().unwrap()).collect();
    assert_eq!(
        whats,
        ["infer-batch", "saturation", "saturation", "p99", "p99"],
        "{runs:?}"
    );
}
