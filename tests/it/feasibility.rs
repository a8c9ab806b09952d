//! Plans checked before GPU time: `validate` and `run --dry-run` warn when a tenant
//! cannot complete the samples its runs need, `--strict` makes it an error, and
//! `--calibrate` judges model tenants from a recorded study.

use crate::common::{gpushare, root, stderr, stdout, write_scenario};

/// The plan found on the H200: a 100 Hz latency probe with a P99 SLO in a 6 s window.
const PROBE_100HZ: &str = r#"name = "probe-100hz"
[run]
duration_s = 6.0
repetitions = 2
[[modes]]
mode = "time-slicing"
[[modes]]
mode = "mps"
[[tenants]]
name = "latency"
workload = "probe.latency"
params = { interval_us = 10000 }
slo = { percentile = 99.0, target_ms = 5.0 }
[[tenants]]
name = "compute"
workload = "probe.compute"
params = { step_ms = 20 }
"#;

const WARNING: &str = "tenant `latency` (probe.latency, c0, any mode): at most 600 samples \
    in the window (interval_us = 10000: one launch per 10000 µs, in 6 s), fewer than the \
    1000 its SLO's P99 needs; lengthen run.duration_s (or --duration) to at least 10 s or \
    set interval_us to at most 6000";

#[test]
fn validate_warns_that_a_100_hz_probe_in_6_s_cannot_state_its_p99() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), "p.toml", PROBE_100HZ);
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok, scenario `probe-100hz`, 6 run(s)"));
    assert_eq!(stderr(&out), format!("warning: {WARNING}\n"));

    let out = gpushare()
        .args(["validate", "--strict"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("error: {WARNING}\n")), "{err}");
    assert!(
        err.contains(&format!(
            "{}: 1 tenant configuration(s) of scenario `probe-100hz` cannot complete the samples their runs need (--strict)",
            path.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 of 1 file(s) invalid"), "{err}");
}

#[test]
fn run_dry_run_warns_and_strict_refuses_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), "p.toml", PROBE_100HZ);
    let out = gpushare()
        .args(["run", "--dry-run"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("scenario `probe-100hz`: 6 run(s)"));
    assert!(stderr(&out).contains(WARNING), "{}", stderr(&out));

    let out = gpushare()
        .args(["run", "--dry-run", "--strict"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());

    // The fix the warning names makes the plan feasible.
    let fixed = write_scenario(
        dir.path(),
        "fixed.toml",
        &PROBE_100HZ.replace("duration_s = 6.0", "duration_s = 10.0"),
    );
    let out = gpushare()
        .args(["run", "--dry-run", "--strict"])
        .arg(&fixed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn calibrate_judges_model_tenants_from_a_recorded_study() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        "train.toml",
        r#"name = "short-train"
[run]
duration_s = 1.0
min_samples = 50
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "resnet"
workload = "train.resnet50"
replicas = 2
params = { batch_size = 64, precision = "fp32" }
"#,
    );
    let study = root().join("results/h200/2026-11-29-resnet50-train-x2");
    let out = gpushare().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        "",
        "without a calibration, model tenants are not judged"
    );

    let out = gpushare()
        .arg("validate")
        .arg("--calibrate")
        .arg(&study)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let expected = format!(
        "warning: tenant `resnet` (train.resnet50, c0, exclusive): about 30 samples in the window (30.592 steps/s as {} measured it exclusive, in 1 s), fewer than the 50 run.min_samples = 50 needs; lengthen run.duration_s (or --duration) to at least 1.7 s, or use smaller steps\n",
        study.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    assert!(
        err.contains("(train.resnet50, c0, time-slicing): about "),
        "{err}"
    );
}
