//! `gpushare merge` over three real CPU studies of one scenario: one report with a row per
//! node and an `all nodes` row, a merged run.json that `report` renders; shards of a sweep
//! (`run --shard`) merged back into the whole sweep; and the refusals of studies from
//! different scenarios or GPU models, with their messages.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    configs_of, gpushare, merge_into, quick_scenario, read_study, root, shard_run, stderr, stdout,
    swept, write_scenario,
};

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
    let text = merge_into(&nodes, &merged_dir);
    assert!(text.starts_with("# `quick` on 3 nodes\n"), "{text}");
    for i in 0..3 {
        assert_eq!(
            text.matches(&format!("| node{i} (")).count(),
            2,
            "one row per group on node {i}: {text}"
        );
    }
    // Across nodes: three node means per group, so an interval is stated.
    assert_across_nodes(&text, "time-slicing c0 | 3/3");
    // The merged study pools nine repetitions per group and renders again.
    let merged = read_study(&merged_dir);
    assert_eq!(merged["scenario"]["run"]["repetitions"], 3);
    assert_eq!(merged["runs"].as_array().unwrap().len(), 6);
    assert_eq!(merged["runs"][5]["id"], "node2/time-slicing/c0/r0");
    assert_eq!(merged["runs"][5]["repetition"], 2);
    let groups = merged["analysis"]["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["n_valid"] == 3), "{groups:?}");
    let report = gpushare().arg("report").arg(&merged_dir).output().unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
}

/// A merge report's `all nodes` rows: one per group, two groups, and the second one's
/// leading cells (`mode config | valid/runs`) are `second`, with an interval across nodes.
fn assert_across_nodes(report: &str, second: &str) {
    let all: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("| all nodes |"))
        .collect();
    assert_eq!(all.len(), 2, "{report}");
    assert!(
        all[1].starts_with(&format!("| all nodes | {second} | ")),
        "{}",
        all[1]
    );
    assert!(
        all[1].contains(" ["),
        "an interval across nodes: {}",
        all[1]
    );
}

fn with(path: &Path, dir: &Path, name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let mut study = read_study(path);
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

#[test]
fn shards_of_a_sweep_merge_into_the_whole_sweep_and_a_repeated_shard_into_intervals() {
    let dir = tempfile::tempdir().unwrap();
    // Two configurations (the `good` tenant's step swept), alone and time-sliced.
    let text = swept(&scenario_text());
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    // The unsharded plan's configurations, from its dry run.
    let dry = gpushare()
        .arg("run")
        .arg(&scenario)
        .arg("--dry-run")
        .output()
        .unwrap();
    let whole: Vec<String> = stdout(&dry)
        .lines()
        .filter_map(|l| l.strip_prefix("configuration c"))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(whole, ["0", "1"], "{}", stdout(&dry));
    // Shard 0 on two nodes, shard 1 on one, at the same time as an Indexed Job's pods.
    let children = [("a", "0/2"), ("b", "1/2"), ("c", "0/2")].map(|(name, shard)| {
        shard_run(&scenario, &dir.path().join(name), shard)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    });
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
    assert_eq!(
        read_study(&a)["shard"],
        serde_json::json!({"index": 0, "count": 2})
    );
    assert_eq!(configs_of(&read_study(&a)), [0]);
    assert_eq!(configs_of(&read_study(&b)), [1]);
    // Each shard ran its exclusive baseline beside its shared runs.
    let ids: Vec<String> = read_study(&b)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["exclusive/c1/r0", "time-slicing/c1/r0"]);

    let merged_dir = dir.path().join("merged");
    let text = merge_into(&[&a, &b, &c], &merged_dir);
    assert!(
        text.contains("2 of the sweep's 2 configuration(s) ran, 1 of them on more than one node."),
        "{text}"
    );
    assert!(
        text.contains("| node1 (") && text.contains(", shard 1/2) | time-slicing c1 | 1/1 |"),
        "{text}"
    );
    // Across nodes only where several ran the group: c0 (shard 0 twice), not c1.
    assert_across_nodes(&text, "time-slicing c0 | 2/2");

    // The merged study holds the unsharded plan's configurations, every mode of each.
    let merged = read_study(&merged_dir);
    assert_eq!(merged.get("shard"), None);
    assert_eq!(configs_of(&merged), [0, 1]);
    assert_eq!(merged["scenario"]["run"]["repetitions"], 2);
    let mut groups: Vec<(String, u64, u64)> = merged["analysis"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["mode"]["mode"].as_str().unwrap().to_string(),
                g["config_idx"].as_u64().unwrap(),
                g["n_valid"].as_u64().unwrap(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            ("exclusive".to_string(), 0, 2),
            ("exclusive".to_string(), 1, 1),
            ("time-slicing".to_string(), 0, 2),
            ("time-slicing".to_string(), 1, 1),
        ]
    );
    let report = gpushare().arg("report").arg(&merged_dir).output().unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
    assert!(
        stdout(&report).contains("c1 good.step_ms=3"),
        "{}",
        stdout(&report)
    );

    // A missing shard is named, and shards of another version of the scenario are refused.
    let partial = gpushare().arg("merge").args([&a, &c]).output().unwrap();
    assert!(partial.status.success(), "{}", stderr(&partial));
    assert!(
        stdout(&partial).contains("1 of the sweep's 2 configuration(s) ran, 1 of them on more than one node; no study ran c1: merge the shard(s) that hold them to complete the sweep."),
        "{}",
        stdout(&partial)
    );
    let other = with(&b, dir.path(), "other", |s| {
        s["scenario"]["run"]["duration_s"] = 5.0.into()
    });
    let refused = gpushare().arg("merge").args([&a, &other]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        stderr(&refused),
        format!(
            "error: merging studies: {} ran scenario `quick`, {} ran `quick` (a different version of it); merge studies of one scenario only\n",
            other.display(),
            a.display()
        )
    );
}
