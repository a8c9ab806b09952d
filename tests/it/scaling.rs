//! Cost as tenants grow: `replicas` as a sweep axis, `run.exclusive_replicas` measuring
//! one replica alone for all, and the pooled baseline every replica's NP divides by.

use serde_json::Value;

use crate::common::{gpushare, stderr, stdout, write_scenario};

const SCALING: &str = r#"name = "scaling-cpu"
[run]
warmup_s = 0.0
duration_s = 0.6
repetitions = 1
min_samples = 5
exclusive_replicas = 1
ready_timeout_s = 10
stop_timeout_s = 2
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "spin"
workload = "cpu.synthetic"
replicas = [1, 3]
params = { step_ms = 2.0 }
"#;

#[test]
fn a_replica_sweep_measures_one_replica_alone_and_pools_its_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), "s.toml", SCALING);
    let study = dir.path().join("study");
    let out = gpushare()
        .args(["run", "--format", "json", "--out"])
        .arg(&study)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        stdout(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = report["analysis"]["runs"].as_array().unwrap();
    let tenants_of = |id: &str| -> Vec<String> {
        let run = runs.iter().find(|r| r["id"] == id).unwrap();
        run["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tenants_of("exclusive/c1/r0"), vec!["spin#0"]);
    assert_eq!(
        tenants_of("time-slicing/c1/r0"),
        vec!["spin#0", "spin#1", "spin#2"]
    );
    let shared = runs
        .iter()
        .find(|r| r["id"] == "time-slicing/c1/r0")
        .unwrap();
    assert_eq!(shared["verdict"]["valid"], true, "{shared:#}");
    for t in shared["tenants"].as_array().unwrap() {
        assert!(t["np"].as_f64().unwrap() > 0.0, "{t:#}");
    }
    let baselines = report["analysis"]["baselines"].as_array().unwrap();
    assert_eq!(baselines.len(), 2);
    assert_eq!(baselines[1]["tenant"], "spin");
    assert_eq!(baselines[1]["n_replicas"], 1);

    let table = gpushare().arg("report").arg(&study).output().unwrap();
    let text = stdout(&table);
    assert!(text.contains("Along the sweep"), "{text}");
    assert!(text.contains("c1 spin.replicas=3"), "{text}");
    assert!(text.contains("1 x 1 replica(s)"), "{text}");
}

#[test]
fn exclusive_replicas_out_of_range_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "s.toml",
        &SCALING.replace("exclusive_replicas = 1", "exclusive_replicas = 0"),
    );
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:7:22: `run.exclusive_replicas`: must be an integer from 1 to 64, got 0",
            path.display()
        )),
        "{}",
        stderr(&out)
    );
}
