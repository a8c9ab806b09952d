//! Helpers shared by the integration tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The gpushare binary under test.
pub fn gpushare() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpushare"))
}

/// The repository root (where `scenarios/` is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a scenario file into `dir` and returns its path.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A two-tenant cpu.synthetic scenario with short windows, for pipeline tests.
pub fn quick_scenario(extra_tenant_params: &str) -> String {
    format!(
        r#"
name = "quick"
description = "test"

[run]
warmup_s = 0.0
duration_s = 0.6
repetitions = 1
min_samples = 5
ready_timeout_s = 10
stop_timeout_s = 2

[[modes]]
mode = "time-slicing"

[[tenants]]
name = "good"
workload = "cpu.synthetic"
params = {{ step_ms = 2.0 }}

[[tenants]]
name = "bad"
workload = "cpu.synthetic"
params = {{ step_ms = 2.0{extra_tenant_params} }}
"#
    )
}

/// `text` (a scenario from [`quick_scenario`]) with the `good` tenant's step swept over 2
/// and 3 ms: two configurations.
pub fn swept(text: &str) -> String {
    assert!(text.contains("step_ms = 2.0 }"), "{text}");
    text.replacen("step_ms = 2.0 }", "step_ms = [2.0, 3.0] }", 1)
}

/// `gpushare run` of shard `shard` (`I/N`) of the scenario into `out`, as an Indexed Job's
/// index runs it, without GPU samples.
pub fn shard_run(scenario: &Path, out: &Path, shard: &str) -> Command {
    let mut command = gpushare();
    command
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(["--shard", shard, "--monitor-interval-ms", "0"]);
    command
}

/// `gpushare merge` of the studies into `out`, which must succeed: its report.
pub fn merge_into(studies: &[impl AsRef<OsStr>], out: &Path) -> String {
    let output = gpushare()
        .arg("merge")
        .args(studies)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// The study a run wrote into `dir` (its `run.json`).
pub fn read_study(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// The configurations a study's runs ran, sorted, each once.
pub fn configs_of(study: &Value) -> Vec<u64> {
    let mut configs: Vec<u64> = study["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["config_idx"].as_u64().unwrap())
        .collect();
    configs.sort();
    configs.dedup();
    configs
}

/// Processes whose environment carries the marker (workers inherit the runner's, and a
/// serving tenant's load generator its worker's): their pids.
pub fn marked_processes(marker: &str) -> Vec<String> {
    marked_commands(marker)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Processes whose environment carries the marker, with their command lines (arguments
/// joined by spaces).
pub fn marked_commands(marker: &str) -> Vec<(String, String)> {
    let needle = format!("GPUSHARE_TEST_MARKER={marker}");
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            if String::from_utf8_lossy(&env)
                .split('\0')
                .any(|kv| kv == needle)
            {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline)
                    .split('\0')
                    .collect::<Vec<_>>()
                    .join(" ");
                found.push((entry.file_name().to_string_lossy().into_owned(), cmdline));
            }
        }
    }
    found
}
