//! The results schema: everything `results/<study>/run.json` holds. A report can be
//! re-rendered from it alone, without re-running anything.
//!
//! Bump [`SCHEMA_VERSION`] on any change that an older reader would misread.

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::monitor::MonitorSeries;
use crate::scenario::{Plan, Scenario, Shard};
use crate::sharing::{ModeRecord, ModeSetting};
use crate::worker::protocol::{StepSample, WorkerSummary};
use crate::workload::Device;

/// The version this gpushare writes. 2 added the optional `failed` columns and fields
/// (a serving tenant's failed requests); a version-1 file simply lacks them.
pub const SCHEMA_VERSION: u32 = 2;

/// The versions this gpushare reads: every one whose fields it still understands.
pub const READABLE_SCHEMA_VERSIONS: &[u32] = &[1, 2];

/// One invocation of `gpushare run`: every run of a scenario's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub schema_version: u32,
    pub scenario: Scenario,
    /// The scenario file as it was read.
    pub scenario_source: String,
    /// Where the scenario was read from.
    pub scenario_path: String,
    pub plan: Plan,
    /// The shard of the sweep this study ran (`run --shard I/N`): its plan keeps every
    /// configuration but only the runs of the shard's (`scenario::shard`). Absent for a
    /// whole study, and for one merged from shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub environment: Environment,
    /// RFC 3339 UTC time the study started.
    pub started_at: String,
    /// RFC 3339 UTC time the study ended; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// True when SIGINT or SIGTERM cut the study short.
    pub interrupted: bool,
    pub runs: Vec<RunRecord>,
    /// Figures computed from the runs when the study was written (`metrics::Analysis`
    /// as JSON), for other tools. gpushare never reads them back: reports recompute every
    /// figure from the records, so a study written by an older version renders with
    /// today's metrics. Kept as JSON so this schema depends on nothing above it.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub analysis: Option<serde_json::Value>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every worker delivered its summary.
    Completed,
    /// A worker crashed, hung, exited early or reported an error, or the mode failed.
    Failed,
    /// SIGINT or SIGTERM arrived during the run.
    Interrupted,
}

/// One run of the plan and everything measured in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub config_idx: usize,
    pub mode: ModeSetting,
    pub repetition: u32,
    pub status: RunStatus,
    /// What went wrong, when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What the sharing mode found and did.
    #[serde(default)]
    pub mode_record: ModeRecord,
    /// When the run started, in seconds since the study started.
    pub started_s: f64,
    /// How long the run took, set-up and teardown included, in seconds.
    pub elapsed_s: f64,
    pub tenants: Vec<TenantRecord>,
    /// GPU samples taken through NVML during the run, when a monitor ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorSeries>,
    /// Why no GPU samples were taken although the run has GPU tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_note: Option<String>,
    /// The measured windows in the monitor series' time: one for a shared run, one per
    /// tenant for an exclusive run. Empty without a monitor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowRecord>,
}

/// A measured window: which tenants ran in it and when, for GPU summaries over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Names of the tenants measured in this window.
    pub tenants: Vec<String>,
    /// Go, in seconds since the monitor started.
    pub start_s: f64,
    /// Stop, in seconds since the monitor started.
    pub end_s: f64,
}

/// One tenant instance in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    pub workload: String,
    pub device: Device,
    /// The unit throughput counts, plural (images, sequences, steps).
    pub item: String,
    pub seed: u64,
    /// Set-up and warm-up time before Ready, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepare_s: Option<f64>,
    pub samples: Samples,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<WorkerSummary>,
    /// How the worker process ended, when it ended abnormally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitRecord>,
    /// Why this tenant failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A tenant's completed steps, stored by column to keep `run.json` compact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// Each step's end, in seconds since Go.
    pub end_s: Vec<f64>,
    /// Each step's wall time, in seconds.
    pub step_s: Vec<f64>,
    /// Items each step completed.
    pub items: Vec<u64>,
    /// Each step's self-measured latency, in seconds, for workloads that report one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_s: Vec<f64>,
    /// Failed units of work of each step (a serving tenant's failed requests), aligned with
    /// `end_s`; empty while no step has failed anything, so other tenants store nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<u64>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.end_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.end_s.is_empty()
    }

    pub fn push(&mut self, s: &StepSample) {
        self.end_s.push(s.end_s);
        self.step_s.push(s.step_s);
        self.items.push(s.items);
        if let Some(latency) = s.latency_s {
            self.latency_s.push(latency);
        }
        if s.failed > 0 && self.failed.is_empty() {
            self.failed.resize(self.end_s.len() - 1, 0);
        }
        if !self.failed.is_empty() {
            self.failed.push(s.failed);
        }
    }

    /// Failed units of work of step `idx` (zero when none were ever recorded).
    pub fn failed_at(&self, idx: usize) -> u64 {
        self.failed.get(idx).copied().unwrap_or(0)
    }
}

/// How a worker process ended, with what it last wrote to stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit status, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The last lines of its stderr.
    pub stderr_tail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(end_s: f64, failed: u64) -> StepSample {
        StepSample {
            end_s,
            step_s: 0.001,
            items: u64::from(failed == 0),
            latency_s: (failed == 0).then_some(0.002),
            failed,
        }
    }

    #[test]
    fn the_failed_column_appears_with_the_first_failure_aligned_with_the_steps() {
        let mut samples = Samples::default();
        samples.push(&sample(0.1, 0));
        samples.push(&sample(0.2, 0));
        assert!(samples.failed.is_empty());
        samples.push(&sample(0.3, 1));
        samples.push(&sample(0.4, 0));
        assert_eq!(samples.failed, vec![0, 0, 1, 0]);
        assert_eq!(samples.failed_at(2), 1);
        assert_eq!(samples.latency_s.len(), 3);
        // A tenant that never fails stores no column, so run.json is unchanged for it.
        let mut clean = Samples::default();
        clean.push(&sample(0.1, 0));
        let json = serde_json::to_string(&clean).unwrap();
        assert!(!json.contains("failed"), "{json}");
        assert_eq!(clean.failed_at(0), 0);
    }
}
