//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
