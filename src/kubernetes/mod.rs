//! Kubernetes: a scenario as manifests (`manifests.rs`, typed k8s-openapi objects as
//! YAML), the NVIDIA device plugin's sharing config per strategy and its rules
//! (`device_plugin.rs`), the study carried back in the runner's log (`transfer.rs`), and
//! `gpushare k8s run` driving kubectl (`kubectl.rs`).
//!
//! **Invariant:** renders and checks without a cluster; `k8s run` deletes the namespace
//! it created on success, failure and Ctrl-C.

pub mod device_plugin;
pub mod kubectl;
pub mod manifests;
pub mod transfer;

pub use device_plugin::Strategy;
pub use manifests::{render, RenderedFile};

use std::path::PathBuf;

use thiserror::Error;

/// Where a study's GPU pods go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Nodes labelled with the strategy's device-plugin config
    /// (`nvidia.com/device-plugin.config=gpushare-<strategy>`), or for `--nodes` nodes
    /// whose plugin does not share (`nvidia.com/gpu.sharing-strategy=none`).
    Label,
    /// One named node (`kubernetes.io/hostname`).
    Node(String),
    /// Nodes with this label.
    Selector(String, String),
}

/// What each index of a `--nodes` Job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PerNode {
    /// The whole scenario on every node: repetitions across nodes, merged into intervals
    /// over the nodes.
    #[default]
    Whole,
    /// Shard I of N of the sweep on index I (`run --shard $(index)/N`): the nodes split
    /// the configurations round-robin, each with its exclusive baselines.
    Shard,
}

/// What `render` needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub image: String,
    /// The study's namespace; `gpushare-<scenario>` when `None`.
    pub namespace: Option<String>,
    pub placement: Placement,
    /// Render an Indexed Job over this many GPU nodes instead of one shared node.
    pub nodes: Option<u32>,
    /// What each index of that Job runs.
    pub per_node: PerNode,
    /// Set `hostIPC: true` on the MPS strategy's tenant pods.
    pub mps_host_ipc: bool,
    /// The token tenant pods present to the runner.
    pub token: String,
    /// The namespace the NVIDIA device plugin runs in (its config ConfigMap goes there).
    pub device_plugin_namespace: String,
    /// CPU each tenant pod requests (a Kubernetes quantity).
    pub tenant_cpu: String,
    /// Memory each tenant pod requests and is limited to (a Kubernetes quantity).
    pub tenant_memory: String,
}

/// Errors from rendering manifests or running a study on a cluster.
#[derive(Debug, Error)]
pub enum KubernetesError {
    #[error("serializing a manifest as YAML: {0}")]
    Yaml(serde_yaml_ng::Error),
    #[error("checking device-plugin config `{name}` against the plugin's rules: {problems}")]
    DevicePluginRules { name: String, problems: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("running `kubectl {args}`: {source}")]
    KubectlStart {
        args: String,
        source: std::io::Error,
    },
    #[error("running `kubectl {args}`: it exited with {status}: {stderr}")]
    Kubectl {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("reading `kubectl {args}` output: {reason}")]
    KubectlOutput { args: String, reason: String },
    #[error("waiting for pod `{pod}`: {reason}")]
    Pod { pod: String, reason: String },
    #[error("reading the study from the log of pod `{pod}`: {reason}")]
    Transfer { pod: String, reason: String },
    #[error("interrupted: deleted namespace `{namespace}`")]
    Interrupted { namespace: String },
    /// The scenario does not fit the request (`--per-node shard` over more nodes than
    /// configurations).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
}
