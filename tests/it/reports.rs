//! The views over recorded studies beyond the tables: `compare`, `recommend`, the HTML
//! page and its charts, from the H200 studies in results/h200/.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::common::{gpushare, root, stderr, stdout};

/// The probes-mix study and the `mps` bench's run of the same scenario, the same day on
/// the same H200: an A/A pair.
const PROBES_MIX: &str = "results/h200/2026-11-29-probes-mix";
const BENCH_MPS: &str = "results/h200/2026-11-29-bench-mps";

fn read_gz(study: &str) -> Value {
    let file = std::fs::File::open(root().join(study).join("run.json.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes `study` as `dir/run.json`.
fn write(dir: &Path, study: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("run.json"), serde_json::to_vec(study).unwrap()).unwrap();
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    gpushare()
        .arg("compare")
        .arg(base)
        .arg(new)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_two_h200_probes_mix_studies_compare_as_within_noise() {
    let out = compare(
        &root().join(PROBES_MIX),
        &root().join(BENCH_MPS),
        &["--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["regressed"], false);
    let changes = json["changes"].as_array().unwrap();
    // 4 modes x 3 tenants x (throughput, P50, P99) + NP in the 3 shared modes + their STP.
    assert_eq!(changes.len(), 4 * 3 * 3 + 3 * 3 + 3);
    assert!(changes.iter().all(|c| c["verdict"] == "within_noise"));
}

#[test]
fn a_tenant_ten_percent_slower_is_flagged_as_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let mut study = read_gz(PROBES_MIX);
    // The compute tenant runs 10% slower everywhere: its steps end at 1/0.9 of their times
    // and take 1/0.9 as long, so 10% fewer fit in each window.
    for run in study["runs"].as_array_mut().unwrap() {
        for tenant in run["tenants"].as_array_mut().unwrap() {
            if tenant["name"] == "compute" {
                for column in ["end_s", "step_s"] {
                    for v in tenant["samples"][column].as_array_mut().unwrap() {
                        *v = Value::from(v.as_f64().unwrap() / 0.9);
                    }
                }
            }
        }
    }
    write(&dir.path().join("slower"), &study);
    let out = compare(
        &root().join(PROBES_MIX),
        &dir.path().join("slower"),
        &["--format", "markdown"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| {
            l.contains("| exclusive ") && l.contains("| compute ") && l.contains("| throughput ")
        })
        .unwrap();
    assert!(
        row.contains("-10.0%") && row.contains("**regressed**"),
        "{row}"
    );
    // The other tenants did not change.
    assert!(
        !text
            .lines()
            .any(|l| l.contains("| memory ") && l.contains("regressed")),
        "{text}"
    );
}

#[test]
fn studies_of_different_scenarios_are_compared_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let other = root().join("tests/fixtures/smoke-cpu");
    let out = compare(&root().join(PROBES_MIX), &other, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: comparing studies of different scenarios (base `probes-mix`, new `smoke-cpu`): \
         their figures do not measure the same thing; add --force to compare them anyway"
    );
    let mut renamed = read_gz(PROBES_MIX);
    renamed["scenario"]["name"] = Value::from("smoke-cpu");
    write(&dir.path().join("renamed"), &renamed);
    let out = compare(&dir.path().join("renamed"), &other, &["--force"]);
    // Nothing in common but the name: no tenant of one is in the other.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `recommend` names a mode for every committed H200 study; these are the studies'
/// conclusions, stated in results/h200/README.md.
#[test]
fn recommend_names_a_mode_for_every_h200_study() {
    let expected = [
        ("2026-11-29-probes-mix", "mps(atp=50)", Some("exclusive")),
        ("2026-11-29-bench-mps", "mps(atp=50)", Some("exclusive")),
        (
            "2026-11-29-gpu-check/probes-sharing",
            "mps(atp=50)",
            Some("exclusive"),
        ),
        ("2026-11-29-resnet50-train-x2", "mps", Some("mps(atp=50)")),
        (
            "2026-11-29-resnet50-train-bert-infer",
            "mps",
            Some("mps(atp=50)"),
        ),
        (
            "2026-11-29-resnet50-train-bert-serve",
            "mps",
            Some("time-slicing"),
        ),
        (
            "2026-11-29-gpt2-train-vit-infer",
            "mps",
            Some("mps(atp=50)"),
        ),
        // A tie within the CIs (1.53 and 1.56): the simpler plain MPS.
        (
            "2026-11-29-notebook-vs-training",
            "mps",
            Some("mps(atp=50)"),
        ),
        ("2026-11-29-torch/overhead", "exclusive", None),
        (
            "2026-12-02-bench-mps/bench-mps-20261202-024311",
            "mps(atp=50)",
            Some("exclusive"),
        ),
        (
            "2026-12-02-bench-mps/bench-mps-gpt2-train-vit-infer-20261202-025030",
            "mps",
            Some("mps(atp=50)"),
        ),
        // A tie within the CIs (1.55 and 1.56): the simpler plain MPS.
        (
            "2026-12-02-bench-mps/bench-mps-resnet50-train-bert-infer-20261202-024837",
            "mps",
            Some("mps(atp=50)"),
        ),
        (
            "2026-12-02-bench-mps/bench-mps-resnet50-train-x2-20261202-024613",
            "mps",
            Some("mps(atp=50)"),
        ),
        // Sweeps: one recommendation per configuration; these are the first's.
        (
            "2026-12-02-measure/interval",
            "exclusive",
            Some("exclusive"),
        ),
        ("2026-12-02-measure/occupancy", "mps", Some("time-slicing")),
        ("2026-12-02-measure/scaling", "exclusive", Some("mps")),
        ("2026-12-02-occupancy-hold", "mps", Some("time-slicing")),
        // One service: every mode ties at STP 1.00, and not sharing is the simplest.
        (
            "2026-12-02-serve-scaling",
            "exclusive",
            Some("time-slicing"),
        ),
    ];
    let mut found = vec![];
    for entry in walk(&root().join("results/h200")) {
        found.push(entry);
    }
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for (study, choice, runner_up) in expected {
        let out = gpushare()
            .arg("recommend")
            .arg(root().join("results/h200").join(study))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        // A sweep names its configuration before the figures: `Choose **mps** (c0 ...): STP`.
        assert!(
            text.contains(&format!("Choose **{choice}**: STP "))
                || text.contains(&format!("Choose **{choice}** (c0 ")),
            "{study}: {text}"
        );
        match runner_up {
            Some(second) => assert!(
                text.contains(&format!("- Runner-up: {second} (STP ")),
                "{study}: {text}"
            ),
            None => assert!(!text.contains("Runner-up"), "{study}: {text}"),
        }
    }
}

/// Study directories under `dir` (those holding a run.json or run.json.gz).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n == "run.json.gz" || n == "run.json")
        {
            out.push(dir.to_path_buf());
        }
    }
    out
}

/// An SVG's structure: how many of each element, then every text in order. Coordinates
/// are left out so the snapshot shows what a chart says, not where plotters put it.
fn svg_structure(svg: &str) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for tag in svg.split('<').skip(1) {
        let name = tag.split([' ', '>', '/', '\n']).next().unwrap_or("");
        if !name.is_empty() {
            *counts.entry(name).or_default() += 1;
        }
    }
    let mut out: String = counts
        .iter()
        .map(|(name, n)| format!("{name}: {n}\n"))
        .collect();
    for piece in svg.split("<text").skip(1) {
        let body = piece.split_once('>').unwrap().1;
        let text = body.split("</text>").next().unwrap().trim();
        out.push_str(&format!("text: {text}\n"));
    }
    out
}

#[test]
fn every_chart_of_the_h200_probes_study_has_its_structure() {
    for chart in ["np", "sharing", "latency", "throughput", "gpu"] {
        let out = gpushare()
            .args(["report", "--format", "svg", "--chart", chart])
            .arg(root().join(PROBES_MIX))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let svg = stdout(&out);
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        insta::assert_snapshot!(format!("h200_probes_chart_{chart}"), svg_structure(&svg));
    }
}

#[test]
fn an_unknown_chart_is_refused_with_the_names_of_the_charts() {
    let out = gpushare()
        .args(["report", "--format", "svg", "--chart", "pie"])
        .arg(root().join(PROBES_MIX))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: rendering chart `pie`: there is no such chart; the charts are np, sharing, \
         latency, throughput, gpu"
    );
}

#[test]
fn the_html_page_of_the_h200_probes_study_is_self_contained_and_small() {
    let out = gpushare()
        .args(["report", "--format", "html"])
        .arg(root().join(PROBES_MIX))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Nothing to fetch and nothing to run: it opens offline.
    for forbidden in ["<script", "http://", "https://", "src="] {
        let outside_svg_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!outside_svg_namespace.contains(forbidden), "{forbidden}");
    }
    assert_eq!(page.matches("<svg ").count(), 5);
    assert!(
        page.contains("Choose <strong>mps(atp=50)</strong>"),
        "recommendation"
    );
    assert!(page.contains("<h2>Environment</h2>") && page.contains("NVIDIA H200"));
}
