//! The validated scenario: what a scenario file means once every value has been checked.
//! It is stored in `run.json` so a study can be re-rendered and re-run from its results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::isolation::container::ContainerSettings;
use crate::sharing::{ModeSetting, TenantSharing};
use crate::workload::ParamValue;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub run: RunSettings,
    /// The sharing modes to compare, with mode parameter sweeps already expanded.
    pub modes: Vec<ModeSetting>,
    pub tenants: Vec<Tenant>,
    /// The `[container]` table, when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSettings>,
}

/// How tenants' workers are started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IsolationKind {
    /// A child process of the runner per tenant.
    #[default]
    Process,
    /// A container per tenant on the Docker engine (`DOCKER_HOST`).
    Container,
    /// Workers that dial the runner over TCP with a token (pods on Kubernetes); the
    /// runner enters no sharing mode itself: the node's device plugin provides it.
    Tcp,
    /// Children of the runner that dial back over loopback: the TCP transport on one host.
    #[serde(rename = "tcp-local")]
    TcpLocal,
}

impl IsolationKind {
    pub fn name(self) -> &'static str {
        match self {
            IsolationKind::Process => "process",
            IsolationKind::Container => "container",
            IsolationKind::Tcp => "tcp",
            IsolationKind::TcpLocal => "tcp-local",
        }
    }

    fn is_process(&self) -> bool {
        *self == IsolationKind::Process
    }
}

/// How each run is timed and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// How tenants' workers are started.
    #[serde(default, skip_serializing_if = "IsolationKind::is_process")]
    pub isolation: IsolationKind,
    /// Warm-up before Ready, handed to each workload, in seconds.
    pub warmup_s: f64,
    /// Measured window of each run, in seconds.
    pub duration_s: f64,
    /// Repetitions of every point of the sweep.
    pub repetitions: u32,
    /// Fewest completed steps a tenant needs in the window for a VALID run.
    pub min_samples: u64,
    /// Shortest span of completed steps a tenant needs for a VALID run, in seconds, when
    /// the scenario sets it; otherwise a share of the window (see [`Self::min_duration_s`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_s: Option<f64>,
    /// Replicas of each tenant the exclusive mode measures alone, when the scenario
    /// limits them; the others share their pooled baseline. All when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_replicas: Option<u32>,
    /// Base seed; every tenant replica and repetition derives its own from it.
    pub seed: u64,
    /// Longest wait for a worker to report Ready, in seconds.
    pub ready_timeout_s: f64,
    /// Longest wait for a worker's summary after Stop, in seconds.
    pub stop_timeout_s: f64,
}

impl RunSettings {
    pub const DEFAULT_WARMUP_S: f64 = 2.0;
    pub const DEFAULT_DURATION_S: f64 = 10.0;
    pub const DEFAULT_REPETITIONS: u32 = 3;
    pub const DEFAULT_MIN_SAMPLES: u64 = 50;
    /// The default minimum measured span, as a share of the window.
    pub const DEFAULT_MIN_DURATION_SHARE: f64 = 0.8;
    pub const DEFAULT_SEED: u64 = 42;
    pub const DEFAULT_READY_TIMEOUT_S: f64 = 300.0;
    pub const DEFAULT_STOP_TIMEOUT_S: f64 = 30.0;

    /// The shortest span of completed steps a VALID run needs, in seconds.
    pub fn min_duration_s(&self) -> f64 {
        self.min_duration_s
            .unwrap_or(self.duration_s * Self::DEFAULT_MIN_DURATION_SHARE)
    }
}

/// A tenant as the scenario defines it. Parameters given as lists are sweep axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub workload: String,
    /// Identical instances of this tenant, each its own worker process (the first point
    /// of `replicas_sweep` when that is given).
    pub replicas: u32,
    /// The replica counts to sweep, when `replicas` is given as a list of several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas_sweep: Vec<u32>,
    /// Each parameter's values: one value, or several for a sweep axis.
    pub params: BTreeMap<String, Vec<ParamValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    #[serde(default)]
    pub sharing: TenantSharing,
}

/// A latency objective: the given percentile of step (or request) latency must not
/// exceed the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// The percentile judged, in percent (for example 99.0).
    pub percentile: f64,
    /// The latency target, in milliseconds.
    pub target_ms: f64,
}
