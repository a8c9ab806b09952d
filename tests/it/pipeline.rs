//! The whole pipeline through the binary: the shipped smoke scenario runs and is VALID,
//! its study re-renders in every format, and recorded results render deterministically.

use serde_json::Value;

use crate::common::{gpushare, root, stderr, stdout};

/// A study recorded with `gpushare run smoke-cpu --duration 1s --repetitions 2` on a
/// 2-core development machine; its numbers never change, so its reports are snapshots.
const FIXTURE: &str = "tests/fixtures/smoke-cpu/run.json";

#[test]
fn smoke_cpu_runs_end_to_end_and_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("study");
    let out = gpushare()
        .current_dir(dir.path())
        .args([
            "run",
            "smoke-cpu",
            "--repetitions",
            "2",
            "--format",
            "summary",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    let summary = stdout(&out);
    // Live CPU timings: the rounded figures and the jittery tenant's SLO verdicts vary
    // between machines; the shape of the summary must not.
    insta::with_settings!({filters => vec![
        (r"(NP|STP|ANTT|fairness) \d+\.\d+", "$1 [rounded]"),
        (r"SLO met \d+/\d+", "SLO met [n/n]"),
    ]}, {
        insta::assert_snapshot!("smoke_cpu_summary", summary);
    });
    // Progress went to stderr, one line per run when not on a terminal.
    assert!(stderr(&out).contains("[4/4] time-slicing/c0/r1 ..."));

    let study: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(study["schema_version"], gpushare::results::SCHEMA_VERSION);
    assert_eq!(study["interrupted"], false);
    let runs = study["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["status"] == "completed"));
    // Exclusive runs measure one tenant at a time; shared runs both at once.
    let steps = |r: &Value, t: usize| {
        r["tenants"][t]["samples"]["end_s"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(steps(&runs[0], 0) > 100 && steps(&runs[1], 1) > 100);
    assert!(study["environment"]["cpu_model"].is_string());
    assert!(
        study["analysis"]["runs"][1]["sharing"]["stp"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // The study re-renders from run.json alone.
    let report = gpushare().arg("report").arg(&out_dir).output().unwrap();
    assert!(report.status.success());
    assert!(stdout(&report).contains("4 of 4 runs VALID"));

    // A second run into the same directory is refused rather than overwriting it.
    let again = gpushare()
        .args(["run", "smoke-cpu", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again)
        .contains("already holds a study: choose another --out, or add --force to replace it"));
}

/// Renders a committed study (a path from the repository root) in one format.
fn render_study(study: &str, format: &str) -> String {
    let out = gpushare()
        .args(["report", "--format", format])
        .arg(root().join(study))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn render(format: &str) -> String {
    render_study(FIXTURE, format)
}

#[test]
fn recorded_study_renders_as_table() {
    insta::assert_snapshot!("fixture_table", render("table"));
}

#[test]
fn recorded_study_renders_as_markdown() {
    insta::assert_snapshot!("fixture_markdown", render("markdown"));
}

#[test]
fn recorded_study_renders_as_summary() {
    insta::assert_snapshot!("fixture_summary", render("summary"));
}

#[test]
fn recorded_study_renders_as_json_with_every_figure() {
    let json: Value = serde_json::from_str(&render("json")).unwrap();
    let shared = &json["analysis"]["runs"][1];
    let np: Vec<f64> = shared["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["np"].as_f64().unwrap())
        .collect();
    // STP is the sum of NP (Eyerman & Eeckhout), recomputed from the samples.
    let stp = shared["sharing"]["stp"].as_f64().unwrap();
    assert!((stp - np.iter().sum::<f64>()).abs() < 1e-9);
}

#[test]
fn report_of_a_missing_study_says_which_file() {
    let out = gpushare()
        .args(["report", "/nonexistent/study"])
        .output()
        .unwrap();
    // A path that is no study is a bad command-line value.
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: reading /nonexistent/study: No such file or directory (os error 2)"
    );
}

/// The probes-mix study measured on the H200 GPU machine (results/h200/): its reports are
/// snapshots, so a change in how figures are computed or rendered shows up as a diff.
const H200_PROBES: &str = "results/h200/2026-11-29-probes-mix";

fn render_h200(format: &str) -> String {
    render_study(H200_PROBES, format)
}

#[test]
fn h200_probes_study_renders_as_summary() {
    insta::assert_snapshot!("h200_probes_summary", render_h200("summary"));
}

#[test]
fn h200_probes_study_renders_as_markdown() {
    insta::assert_snapshot!("h200_probes_markdown", render_h200("markdown"));
}

/// The torch, serving and notebook studies measured on the H200: their summaries cover
/// latency tenants, SLO verdicts and two-model mixes from real runs.
#[test]
fn h200_model_studies_render_as_summaries() {
    for name in [
        "resnet50-train-x2",
        "resnet50-train-bert-infer",
        "gpt2-train-vit-infer",
        "resnet50-train-bert-serve",
        "notebook-vs-training",
    ] {
        let study = format!("results/h200/2026-11-29-{name}");
        insta::assert_snapshot!(
            format!("h200_{name}_summary"),
            render_study(&study, "summary")
        );
    }
}

/// Runs the scenario `text` with `--format json` from a fresh directory and returns the
/// JSON report; a failed run fails the test with the runner's stderr and the report, which
/// says which validity check failed.
fn run_json_report(text: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let scenario = crate::common::write_scenario(dir.path(), "s.toml", text);
    let out = gpushare()
        .args(["run", "--format", "json", "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// A tiny model on the CPU through the whole pipeline: worker processes, barrier,
/// samples, report. Its figures are labelled CPU data.
#[cfg(feature = "torch")]
#[test]
fn tiny_torch_models_run_as_tenants_on_the_cpu() {
    let report = run_json_report(
        r#"name = "torch-cpu"
[run]
warmup_s = 0.5
duration_s = 3.0
repetitions = 1
min_samples = 3
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "resnet"
workload = "train.resnet50"
params = { tiny = true, device = "cpu" }
[[tenants]]
name = "bert"
workload = "infer.batch.bert-base"
params = { tiny = true, device = "cpu" }
"#,
    );
    let shared = &report["analysis"]["runs"][1];
    assert_eq!(shared["tenants"][0]["item"], "images");
    assert_eq!(shared["tenants"][0]["device"], "cpu");
    assert_eq!(shared["tenants"][1]["item"], "sequences");
    assert!(
        shared["tenants"][1]["throughput_items_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// A tiny BERT served on the CPU as a tenant (`serve.bert-base`: the server in the worker,
/// its load generator a process of its own) through the whole pipeline: requests answered
/// at the offered rate, their latency reported, labelled CPU data.
#[cfg(feature = "torch")]
#[test]
fn a_tiny_torch_model_serves_as_a_tenant_on_the_cpu() {
    let report = run_json_report(
        r#"name = "serve-torch-cpu"
[run]
warmup_s = 0.5
duration_s = 3.0
repetitions = 1
min_samples = 20
[[modes]]
mode = "exclusive"
[[tenants]]
name = "bert"
workload = "serve.bert-base"
params = { tiny = true, device = "cpu", rate = 20.0, max_batch_size = 4 }
slo = { percentile = 50.0, target_ms = 1000.0 }
"#,
    );
    let tenant = &report["analysis"]["runs"][0]["tenants"][0];
    assert_eq!(tenant["device"], "cpu");
    let rate = tenant["throughput_items_per_s"].as_f64().unwrap();
    assert!(
        (15.0..=25.0).contains(&rate),
        "{rate} requests/s for 20 offered"
    );
}

/// An `interactive.notebook` session on the CPU next to a CPU fixture, alone and
/// time-sliced: its wait per cell comes back as a latency distribution, its SLO is judged
/// on that wait (not on the step, which includes think time), and it is labelled CPU data.
#[test]
fn notebook_on_the_cpu_reports_its_cell_latency_as_cpu_data() {
    let report = run_json_report(
        r#"name = "notebook-cpu"
[run]
warmup_s = 0.0
duration_s = 1.5
repetitions = 1
min_samples = 10
[[modes]]
mode = "exclusive"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "notebook"
workload = "interactive.notebook"
params = { device = "cpu", think_ms = 20.0, cell_ms = 5.0 }
slo = { percentile = 50.0, target_ms = 1000.0 }
[[tenants]]
name = "steady"
workload = "cpu.synthetic"
params = { step_ms = 2.0 }
"#,
    );
    let runs = report["analysis"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let notebook = run["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "notebook")
            .unwrap();
        assert_eq!(notebook["device"], "cpu");
        assert_eq!(notebook["item"], "cells");
        let latency = &notebook["latency"];
        assert!(latency["n"].as_u64().unwrap() >= 10, "{latency}");
        // A cell spins 5 ms; the median wait is at least that, and far below a think
        // plus a cell, which is what the step time would show.
        let p50_ms = latency["p50_ms"].as_f64().unwrap();
        assert!((4.9..500.0).contains(&p50_ms), "p50 {p50_ms} ms");
        let slo = &notebook["slo"];
        assert_eq!(slo["observed_ms"].as_f64().unwrap(), p50_ms);
        assert_eq!(slo["met"], true);
    }
}
