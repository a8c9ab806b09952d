//! `gpushare merge` over three real CPU studies of one scenario: one report with a row per
//! node and an `all nodes` row, a merged run.json that `report` renders; and the refusals
//! of studies from different scenarios or GPU models, with their messages.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{gpushare, quick_scenario, root, stderr, stdout, write_scenario};

fn scenario_text() -> String {
    quick_scenario("").replace(
        "[[modes]]\nmode = \"time-slicing\"",
        "[[modes]]\nmode = \"exclusive\"\n\n[[modes]]\nmode = \"time-slicing\"",
    )
}

fn study(dir: &Path, name: &str, scenario: &Path) -> PathBuf {
    let out = dir.join(name);
    let output = gpushare()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(&out)
        .args(["--monitor-interval-ms", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    out
}

#[test]
fn three_node_studies_merge_into_one_report_with_a_row_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &scenario_text());
    let nodes: Vec<PathBuf> = (0..3)
        .map(|i| study(dir.path(), &format!("node-{i}"), &scenario))
        .collect();
    let merged_dir = dir.path().join("merged");
    let output = gpushare()
        .arg("merge")
        .args(&nodes)
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("# `quick` on 3 nodes\n"), "{text}");
    for i in 0..3 {
        assert_eq!(
            text.matches(&format!("| node{i} (")).count(),
            2,
            "one row per group on node {i}: {text}"
        );
    }
    // Across nodes: three node means per group, so an interval is stated.
    let all: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| all nodes |"))
        .collect();
    assert_eq!(all.len(), 2, "{text}");
    assert!(
        all[1].starts_with("| all nodes | time-slicing c0 | 3/3 | "),
        "{}",
        all[1]
    );
    assert!(
        all[1].contains(" ["),
        "an interval across nodes: {}",
        all[1]
    );
    // The merged study pools nine repetitions per group and renders again.
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(merged_dir.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(merged["scenario"]["run"]["repetitions"], 3);
    assert_eq!(merged["runs"].as_array().unwrap().len(), 6);
    assert_eq!(merged["runs"][5]["id"], "node2/time-slicing/c0/r0");
    assert_eq!(merged["runs"][5]["repetition"], 2);
    let groups = merged["analysis"]["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["n_valid"] == 3), "{groups:?}");
    let report = gpushare().arg("report").arg(&merged_dir).output().unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
}

fn with(path: &Path, dir: &Path, name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let mut study: Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("run.json")).unwrap()).unwrap();
    edit(&mut study);
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("run.json"), study.to_string()).unwrap();
    out
}

#[test]
fn merge_refuses_other_scenarios_and_gpu_models() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &scenario_text());
    let a = study(dir.path(), "a", &scenario);
    let other_name = with(&a, dir.path(), "b", |s| {
        s["scenario"]["name"] = "other".into()
    });
    let other_version = with(&a, dir.path(), "c", |s| {
        s["scenario"]["run"]["duration_s"] = 5.0.into()
    });
    // A monitor series as the H200 studies recorded it, its samples left out.
    let h200: Value = {
        let file = std::fs::File::open(
            root().join("results/h200/2026-11-29-resnet50-train-bert-infer/run.json.gz"),
        )
        .unwrap();
        serde_json::from_reader(flate2::read::GzDecoder::new(file)).unwrap()
    };
    let mut monitor = h200["runs"][0]["monitor"].clone();
    monitor["samples"] = Value::Array(vec![]);
    let on_h200 = with(&a, dir.path(), "d", |s| {
        s["runs"][0]["monitor"] = monitor.clone()
    });
    let merge = |b: &Path| {
        let output = gpushare().arg("merge").arg(&a).arg(b).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        stderr(&output)
    };
    assert_eq!(
        merge(&other_name),
        format!(
            "error: merging studies: {} ran scenario `other`, {} ran `quick`; merge studies of one scenario only\n",
            other_name.display(),
            a.display()
        )
    );
    assert_eq!(
        merge(&other_version),
        format!(
            "error: merging studies: {} ran scenario `quick`, {} ran `quick` (a different version of it); merge studies of one scenario only\n",
            other_version.display(),
            a.display()
        )
    );
    assert_eq!(
        merge(&on_h200),
        format!(
            "error: merging studies: {} ran on NVIDIA H200, {} on no monitored GPU; merge studies of one GPU model only\n",
            on_h200.display(),
            a.display()
        )
    );
    let one = gpushare().arg("merge").arg(&a).output().unwrap();
    assert_eq!(one.status.code(), Some(2));
}
