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
    // The figures the snapshot redacts, checked where they do not depend on the machine:
    // a tenant alone has NP 1 on average by definition, and the shared figures printed are
    // the study's own, rounded to 0.05.
    let section = |header: &str| -> Vec<String> {
        summary
            .lines()
            .skip_while(|line| !line.starts_with(header))
            .skip(1)
            .take_while(|line| line.starts_with("  "))
            .map(str::to_owned)
            .collect()
    };
    let alone = section("exclusive c0");
    assert_eq!(alone.len(), 2, "{summary}");
    for line in &alone {
        assert!(line.contains(": NP 1.00"), "{line}");
    }
    let figure = |name: &str| -> f64 {
        let line = summary
            .lines()
            .find(|line| line.starts_with("time-slicing c0"))
            .unwrap();
        let after = line.split(&format!("{name} ")).nth(1).unwrap();
        after
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let report: Value = serde_json::from_str(&stdout(
        &gpushare()
            .args(["report", "--format", "json"])
            .arg(&out_dir)
            .output()
            .unwrap(),
    ))
    .unwrap();
    let group = report["analysis"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["mode"]["mode"] == "time-slicing")
        .unwrap();
    for (name, key) in [("STP", "stp"), ("ANTT", "antt"), ("fairness", "fairness")] {
        let stated = figure(name);
        let mean = group[key]["mean"].as_f64().unwrap();
        assert!(
            (stated - mean).abs() <= 0.025 + 1e-9,
            "{name} {stated} vs {mean}"
        );
    }
    assert!((0.0..=1.0).contains(&figure("fairness")), "{summary}");
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
    let runs = json["analysis"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    // A tenant's baseline is its mean throughput over the VALID exclusive runs.
    let baseline = |name: &Value| {
        let alone: Vec<f64> = runs
            .iter()
            .filter(|run| run["mode"]["mode"] == "exclusive" && run["verdict"]["valid"] == true)
            .flat_map(|run| run["tenants"].as_array().unwrap())
            .filter(|t| &t["name"] == name)
            .map(|t| t["throughput_items_per_s"].as_f64().unwrap())
            .collect();
        assert_eq!(alone.len(), 2, "{name}");
        alone.iter().sum::<f64>() / alone.len() as f64
    };
    let shared_runs: Vec<&Value> = runs
        .iter()
        .filter(|run| run["mode"]["mode"] == "time-slicing")
        .collect();
    assert_eq!(shared_runs.len(), 2);
    for shared in shared_runs {
        let tenants = shared["tenants"].as_array().unwrap();
        assert_eq!(tenants.len(), 2);
        let mut np = Vec::new();
        for tenant in tenants {
            // Throughput is the items over the window; NP divides it by the tenant's
            // throughput alone (Eyerman & Eeckhout 2008): both from stored fields.
            let throughput = tenant["throughput_items_per_s"].as_f64().unwrap();
            let items = tenant["items"].as_f64().unwrap();
            assert!(close(
                throughput,
                items / tenant["window_s"].as_f64().unwrap()
            ));
            let expected_np = throughput / baseline(&tenant["name"]);
            let tenant_np = tenant["np"].as_f64().unwrap();
            assert!(
                close(tenant_np, expected_np),
                "{tenant_np} vs {expected_np}"
            );
            np.push(tenant_np);
        }
        let n = np.len() as f64;
        let sharing = &shared["sharing"];
        // STP = sum of NP, ANTT = mean of 1/NP, Jain's index = (sum NP)^2 / (n sum NP^2).
        assert!(close(sharing["stp"].as_f64().unwrap(), np.iter().sum()));
        let antt = np.iter().map(|v| 1.0 / v).sum::<f64>() / n;
        assert!(close(sharing["antt"].as_f64().unwrap(), antt));
        let jain = np.iter().sum::<f64>().powi(2) / (n * np.iter().map(|v| v * v).sum::<f64>());
        assert!(close(sharing["fairness"].as_f64().unwrap(), jain));
    }
    // And the figures themselves, to three significant digits.
    insta::assert_json_snapshot!("fixture_figures", figures(&json));
}

/// Rounds to three significant digits, so a snapshot holds what the README quotes and
/// changes only when a figure does.
fn round_figures(value: &Value) -> Value {
    match value {
        Value::Number(number) if number.is_f64() => {
            let v = number.as_f64().unwrap_or_default();
            if v == 0.0 || !v.is_finite() {
                return value.clone();
            }
            // Dividing or multiplying by an exact power of ten (never by 0.1, which is not
            // one) gives the double nearest the rounded decimal.
            let digits = 2 - v.abs().log10().floor() as i32;
            let rounded = if digits >= 0 {
                let scale = 10f64.powi(digits);
                (v * scale).round() / scale
            } else {
                let scale = 10f64.powi(-digits);
                (v / scale).round() * scale
            };
            serde_json::json!(rounded)
        }
        Value::Array(items) => Value::Array(items.iter().map(round_figures).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), round_figures(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every figure of a study's analysis that a report states (across repetitions, and per
/// run the sharing figures and verdicts), rounded to three significant digits.
fn figures(json: &Value) -> Value {
    let runs: Vec<Value> = json["analysis"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            serde_json::json!({
                "id": run["id"],
                "status": run["status"],
                "sharing": run["sharing"],
                "tenants": run["tenants"].as_array().unwrap().iter().map(|t| serde_json::json!({
                    "name": t["name"],
                    "throughput_items_per_s": t["throughput_items_per_s"],
                    "np": t["np"],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    round_figures(&serde_json::json!({
        "groups": json["analysis"]["groups"],
        "runs": runs,
    }))
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

/// Every committed H200 study's figures at the three significant digits the README and
/// results/h200/README.md quote (the summaries above round NP to 0.05).
#[test]
fn h200_studies_figures_to_three_significant_digits() {
    let mut studies: Vec<String> = std::fs::read_dir(crate::common::root().join("results/h200"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("run.json.gz").exists() || dir.join("run.json").exists())
        .map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    studies.sort();
    assert_eq!(studies.len(), 9, "{studies:?}");
    for name in studies {
        let json: Value =
            serde_json::from_str(&render_study(&format!("results/h200/{name}"), "json")).unwrap();
        let figures = figures(&json);
        assert!(!figures["groups"].as_array().unwrap().is_empty(), "{name}");
        insta::assert_json_snapshot!(format!("h200_{name}_figures"), figures);
    }
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
