//! The container a tenant's worker runs in, as the create-container body the backend sends
//! to the engine: a pure function of the settings, the launch and the runner, so the exact
//! request is snapshot-tested without an engine (and without a GPU).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use testcontainers::bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, Mount, MountType,
};

use crate::isolation::WorkerLaunch;
use crate::sharing::mps::PIPE_DIRECTORY_VAR;

/// Marks every container gpushare starts (value `1`).
pub const MARKER_LABEL: &str = "gpushare";
/// The study a container belongs to.
pub const STUDY_LABEL: &str = "gpushare.study";
/// The run (`time-slicing/c0/r1`) a container belongs to.
pub const RUN_LABEL: &str = "gpushare.run";
/// The tenant instance the container's worker runs.
pub const TENANT_LABEL: &str = "gpushare.tenant";
/// `<host>:<pid>` of the runner that started it, so a later runner can tell a crashed
/// runner's leftovers from a live concurrent study's containers.
pub const RUNNER_LABEL: &str = "gpushare.runner";

/// The image the `container` backend runs by default: the project's own test image, built
/// from this very binary by [`BUILD_TEST_IMAGE`].
pub fn test_image() -> String {
    format!("gpushare-test:{}", env!("CARGO_PKG_VERSION"))
}

/// The command that builds [`test_image`], for error messages.
pub const BUILD_TEST_IMAGE: &str = "scripts/build-test-image.sh";

/// GPUs a GPU tenant's container gets when its sharing mode does not name one (MIG names
/// its instance; exclusive, time-slicing and MPS take these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRequest {
    /// Every GPU of the host (`--gpus all`).
    All,
    /// This many GPUs (`--gpus 2`).
    Count(u32),
    /// These GPUs or MIG instances, by UUID (`GPU-...`, `MIG-...`) or index.
    Ids(Vec<String>),
}

/// A host path bind-mounted into every tenant's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Absolute path on the host.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// How tenants' containers are made (the scenario's `[container]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// Image every tenant runs unless it has its own; never pulled.
    pub image: String,
    /// Per-tenant images, by tenant name (replicas share their tenant's).
    #[serde(default)]
    pub tenant_images: BTreeMap<String, String>,
    /// Extra environment for every worker (the sharing mode's variables win).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host paths bind-mounted into every container.
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// `uid[:gid]` or a user name the worker runs as; default the image's user, or under
    /// MPS the runner's (the control daemon's) UID and GID.
    #[serde(default)]
    pub user: Option<String>,
    /// GPUs for GPU tenants.
    pub gpus: GpuRequest,
    /// The command that runs gpushare in the image, when it is not the image's entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Docker network mode; `none` (loopback only) unless a workload needs more.
    pub network: String,
}

impl Default for ContainerSettings {
    fn default() -> Self {
        ContainerSettings {
            image: test_image(),
            tenant_images: BTreeMap::new(),
            env: BTreeMap::new(),
            mounts: vec![],
            user: None,
            gpus: GpuRequest::All,
            entrypoint: None,
            network: "none".to_string(),
        }
    }
}

impl ContainerSettings {
    /// The image a tenant instance (`name` or `name#replica`) runs.
    pub fn image_for(&self, tenant: &str) -> &str {
        let base = tenant.split_once('#').map_or(tenant, |(base, _)| base);
        self.tenant_images
            .get(base)
            .map_or(self.image.as_str(), String::as_str)
    }

    /// Every image a study with these settings runs, each once.
    pub fn images(&self) -> Vec<&str> {
        let mut images: Vec<&str> = std::iter::once(self.image.as_str())
            .chain(self.tenant_images.values().map(String::as_str))
            .collect();
        images.sort_unstable();
        images.dedup();
        images
    }
}

/// Who is asking: what goes into the labels and the default MPS user.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub study_id: &'a str,
    /// `<host>:<pid>` of the runner.
    pub runner: &'a str,
    /// The runner's UID and GID (the MPS control daemon runs as them).
    pub uid: u32,
    pub gid: u32,
}

/// The create-container body for one worker.
pub fn create_body(
    settings: &ContainerSettings,
    launch: &WorkerLaunch<'_>,
    owner: &Owner<'_>,
) -> ContainerCreateBody {
    let mode_env: BTreeMap<&str, &str> = launch
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut env: BTreeMap<&str, &str> = settings
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend(mode_env.iter().map(|(k, v)| (*k, *v)));
    let mps_pipe_dir = mode_env.get(PIPE_DIRECTORY_VAR).copied();

    let mut mounts: Vec<Mount> = settings
        .mounts
        .iter()
        .map(|m| bind(&m.source, &m.target, m.read_only))
        .collect();
    // The MPS clients find the run's private control daemon through its pipe directory,
    // at the same path as on the host, and share its IPC namespace and UID:
    // https://docs.nvidia.com/deploy/mps/index.html#topic_3_3_1_3
    if let Some(dir) = mps_pipe_dir {
        mounts.push(bind(dir, dir, false));
    }
    let user = match (&settings.user, mps_pipe_dir) {
        (Some(user), _) => Some(user.clone()),
        (None, Some(_)) => Some(format!("{}:{}", owner.uid, owner.gid)),
        (None, None) => None,
    };
    let device_requests = launch.gpu.then(|| vec![gpu_request(settings, &mode_env)]);

    let labels = HashMap::from([
        (MARKER_LABEL.to_string(), "1".to_string()),
        (STUDY_LABEL.to_string(), owner.study_id.to_string()),
        (RUN_LABEL.to_string(), launch.run_id.to_string()),
        (TENANT_LABEL.to_string(), launch.tenant.to_string()),
        (RUNNER_LABEL.to_string(), owner.runner.to_string()),
    ]);
    ContainerCreateBody {
        image: Some(settings.image_for(launch.tenant).to_string()),
        entrypoint: settings.entrypoint.clone(),
        cmd: Some(vec!["worker".to_string()]),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user,
        labels: Some(labels),
        // The protocol runs over the attached stdin and stdout; stdin closes when the
        // runner's attach connection does, and a worker exits on end of stdin.
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            auto_remove: Some(true),
            // An init process as PID 1 reaps the worker's children and lets a crashing
            // worker die of its signal, as it would outside a container.
            init: Some(true),
            network_mode: Some(settings.network.clone()),
            ipc_mode: mps_pipe_dir.map(|_| "host".to_string()),
            mounts: (!mounts.is_empty()).then_some(mounts),
            device_requests,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bind(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// The `--gpus` equivalent: the MIG instance or GPU the sharing mode placed the worker on
/// (by UUID, in `CUDA_VISIBLE_DEVICES`), else the settings' GPUs.
fn gpu_request(settings: &ContainerSettings, mode_env: &BTreeMap<&str, &str>) -> DeviceRequest {
    let placed: Vec<String> = mode_env
        .get("CUDA_VISIBLE_DEVICES")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|id| id.starts_with("MIG-") || id.starts_with("GPU-"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let (count, device_ids) = if !placed.is_empty() {
        (None, Some(placed))
    } else {
        match &settings.gpus {
            GpuRequest::All => (Some(-1), None),
            GpuRequest::Count(n) => (Some(i64::from(*n)), None),
            GpuRequest::Ids(ids) => (None, Some(ids.clone())),
        }
    };
    DeviceRequest {
        driver: Some("nvidia".to_string()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".to_string()]]),
        options: None,
    }
}
