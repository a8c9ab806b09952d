use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{exit, CliError};
use crate::kubernetes::kubectl::{Collect, Kubectl, Target};
use crate::kubernetes::{self, manifests, KubernetesError, PerNode, Placement, RenderOptions};
use crate::scenario;

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    pub command: K8sCommand,
}

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Write a scenario's manifests: the study's namespace, token and scenario; the NVIDIA
    /// device plugin's config per sharing strategy; per strategy a runner pod with a
    /// headless Service and one pod per tenant replica on one GPU node (or, with --nodes,
    /// an Indexed Job over GPU nodes, each running the whole scenario or, with --per-node
    /// shard, a shard of its sweep).
    Render(RenderArgs),
    /// Render, apply with kubectl, wait for the runners, copy each study back from its
    /// runner's log (same run.json; `gpushare report` works on it), and delete the study's
    /// namespace on success, failure and Ctrl-C.
    Run(K8sRunArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A scenario file, or the name of a shipped scenario (see `gpushare list`).
    pub scenario: PathBuf,
    /// Write the manifests into this directory [default: print them on stdout].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// The token tenant pods present to the runner [default: a fresh random one].
    #[arg(long, env = "GPUSHARE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The container image with `gpushare` on its PATH (see docker/README.md).
    #[arg(long, default_value = concat!("gpushare:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The study's namespace [default: gpushare-<scenario>].
    #[arg(long)]
    pub namespace: Option<String>,
    /// Put the GPU pods on this node (its kubernetes.io/hostname) instead of nodes
    /// labelled with the strategy's device-plugin config.
    #[arg(long, conflicts_with = "node_selector")]
    pub node: Option<String>,
    /// Put the GPU pods on nodes with this label (K=V), e.g. GKE's
    /// cloud.google.com/gke-gpu-sharing-strategy=mps.
    #[arg(long, value_name = "K=V", value_parser = parse_label)]
    pub node_selector: Option<(String, String)>,
    /// Spread the study over N GPU nodes: an Indexed Job, one index per node (hostname
    /// anti-affinity), each running what --per-node says; merge with `gpushare merge`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub nodes: Option<u32>,
    /// With --nodes, what each index runs: `whole` (the whole scenario on every node:
    /// repetitions across nodes) or `shard` (index I runs shard I/N of the sweep, `run
    /// --shard`: configurations c with c mod N = I, each with its exclusive baselines;
    /// N at most the sweep's configurations).
    #[arg(long, value_enum, default_value_t = PerNode::Whole, requires = "nodes")]
    pub per_node: PerNode,
    /// Give the MPS tenant pods the node's IPC namespace (`hostIPC: true`), for clusters
    /// whose MPS daemon its clients reach through the host's IPC (check your platform's
    /// MPS page; GKE: kubernetes/README.md, "MPS and IPC"). The NVIDIA device plugin
    /// needs none: it mounts the daemon's pipe and shm directories into each container.
    #[arg(long)]
    pub mps_host_ipc: bool,
    /// The namespace the NVIDIA device plugin runs in (its config ConfigMap goes there).
    #[arg(long, default_value = "nvidia-device-plugin")]
    pub device_plugin_namespace: String,
    /// CPU each tenant pod requests (a Kubernetes quantity).
    #[arg(long, default_value = "2")]
    pub tenant_cpu: String,
    /// Memory each tenant pod requests and is limited to (a Kubernetes quantity).
    #[arg(long, default_value = "16Gi")]
    pub tenant_memory: String,
}

#[derive(Debug, Args)]
pub struct K8sRunArgs {
    /// A scenario file, or the name of a shipped scenario.
    pub scenario: PathBuf,
    /// Write the studies here: one directory per sharing strategy (`time-slicing/`,
    /// `mps/`), or `node-<i>/` with --nodes [default: results/k8s-<scenario>].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// The kubectl to run.
    #[arg(long, default_value = "kubectl")]
    pub kubectl: PathBuf,
    /// The kubeconfig context to use [default: kubectl's current context].
    #[arg(long)]
    pub context: Option<String>,
    /// The kubeconfig file [default: kubectl's: $KUBECONFIG or ~/.kube/config].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How often to ask the cluster how the pods are doing, in milliseconds.
    #[arg(long, default_value_t = 2000, hide = true)]
    pub poll_interval_ms: u64,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got `{text}`")),
    }
}

fn options(args: &ManifestArgs, token: String) -> RenderOptions {
    RenderOptions {
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        placement: match (&args.node, &args.node_selector) {
            (Some(node), _) => Placement::Node(node.clone()),
            (None, Some((k, v))) => Placement::Selector(k.clone(), v.clone()),
            (None, None) => Placement::Label,
        },
        nodes: args.nodes,
        per_node: args.per_node,
        mps_host_ipc: args.mps_host_ipc,
        token,
        device_plugin_namespace: args.device_plugin_namespace.clone(),
        tenant_cpu: args.tenant_cpu.clone(),
        tenant_memory: args.tenant_memory.clone(),
    }
}

pub fn run(args: K8sArgs) -> Result<ExitCode, CliError> {
    match args.command {
        K8sCommand::Render(args) => render(args),
        K8sCommand::Run(args) => run_on_cluster(args),
    }
}

fn render(args: RenderArgs) -> Result<ExitCode, CliError> {
    let (scenario, source, _) = scenario::resolve(&args.scenario)?;
    let token = args.token.clone().unwrap_or_else(super::run::random_token);
    let opts = options(&args.manifest, token);
    let files = kubernetes::render(&scenario, &source, &opts)?;
    match &args.out {
        Some(dir) => {
            write_files(dir, &files)?;
            eprintln!(
                "wrote {} file(s) to {}; apply order: {}",
                files.len(),
                dir.display(),
                files
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        None => {
            for file in &files {
                println!("# {}", file.name);
                print!("{}", file.yaml);
            }
        }
    }
    if opts.nodes.is_none() {
        for (strategy, modes) in manifests::strategies(&scenario) {
            eprintln!(
                "{}: runs {}; label its GPU node: kubectl label node NODE --overwrite {}={}",
                strategy.name(),
                modes.join(", "),
                kubernetes::device_plugin::CONFIG_LABEL,
                strategy.config_name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes rendered files into `dir`.
pub fn write_files(dir: &Path, files: &[kubernetes::RenderedFile]) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| KubernetesError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for file in files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.yaml)
            .map_err(|source| KubernetesError::Write { path, source })?;
    }
    Ok(())
}

fn run_on_cluster(args: K8sRunArgs) -> Result<ExitCode, CliError> {
    let (scenario, source, _) = scenario::resolve(&args.scenario)?;
    let opts = options(&args.manifest, super::run::random_token());
    let files = kubernetes::render(&scenario, &source, &opts)?;
    let staging = tempfile::tempdir().map_err(|source| KubernetesError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    write_files(staging.path(), &files)?;
    // The device plugin's config and node labels are the cluster's, prepared once by
    // its admins (kubernetes/README.md); a study applies only what lives in its namespace.
    let apply: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.name != "device-plugin.yaml")
        .map(|f| staging.path().join(&f.name))
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(format!("k8s-{}", scenario.name)));
    let collect: Vec<Collect> = match opts.nodes {
        Some(count) => vec![Collect {
            target: Target::JobPods {
                selector: format!("job-name={}", manifests::job_name(&scenario)),
                count,
            },
            out: out.clone(),
        }],
        None => manifests::strategies(&scenario)
            .keys()
            .map(|&s| Collect {
                target: Target::Pod(manifests::runner_name(s)),
                out: out.join(s.name()),
            })
            .collect(),
    };
    let kubectl = Kubectl {
        program: args.kubectl.clone(),
        context: args.context.clone(),
        kubeconfig: args.kubeconfig.clone(),
    };
    let namespace = manifests::namespace_name(&scenario, &opts);
    eprintln!("applying `{}` in namespace {namespace}", scenario.name);
    let runtime = super::runtime()?;
    let collected = runtime.block_on(kubectl.run_study(
        &namespace,
        &apply,
        &collect,
        Duration::from_millis(args.poll_interval_ms),
    ));
    let collected = match collected {
        Ok(collected) => collected,
        Err(err @ KubernetesError::Interrupted { .. }) => {
            eprintln!("{err}");
            return Ok(ExitCode::from(exit::INTERRUPTED));
        }
        Err(err) => return Err(err.into()),
    };
    for c in &collected {
        eprintln!(
            "{}: {} ({}; `gpushare report {}`)",
            c.pod,
            c.run_json.display(),
            if c.succeeded {
                "every run VALID"
            } else {
                "a run was INVALID or FAILED"
            },
            c.run_json.parent().unwrap_or(Path::new(".")).display()
        );
    }
    eprintln!("deleted namespace {namespace}");
    if opts.nodes.is_some() {
        eprintln!(
            "join the node studies into one: gpushare merge {}/node-* --out {}/merged",
            out.display(),
            out.display()
        );
    }
    Ok(ExitCode::from(if collected.iter().all(|c| c.succeeded) {
        exit::OK
    } else {
        exit::INVALID_RUN
    }))
}
