//! Typed manifests (k8s-openapi, Kubernetes 1.33 API) for one scenario: the study's
//! namespace, its token and scenario, the NVIDIA device plugin's config per sharing
//! strategy, and per strategy a runner pod behind a headless Service with one pod per
//! tenant replica dialing it, all on one GPU node. With `nodes`, an Indexed Job instead:
//! one index per GPU node, each running the whole scenario (or, with `PerNode::Shard`,
//! shard `index/nodes` of its sweep) with process isolation.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, Namespace, ObjectFieldSelector, Pod, PodAffinity, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, Secret, SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

use super::device_plugin::{self, Strategy, CONFIG_LABEL, GPU_RESOURCE};
use super::{KubernetesError, PerNode, Placement, RenderOptions};
use crate::scenario::{self, Plan, Scenario};
use crate::sharing::ModeSetting;

/// The port the runner listens on for tenant pods.
pub const RUNNER_PORT: i32 = 7070;
/// Where pods mount the scenario.
const SCENARIO_DIR: &str = "/etc/gpushare";
const SCENARIO_KEY: &str = "scenario.toml";
/// Non-root user the containers run as (the conventional "nonroot" uid).
const RUN_AS_USER: i64 = 65532;
/// The GPU feature discovery label a node without sharing carries.
const SHARING_STRATEGY_LABEL: &str = "nvidia.com/gpu.sharing-strategy";
const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
const STRATEGY_LABEL: &str = "gpushare/strategy";
/// The annotation the Job controller gives each pod of an Indexed Job: its index
/// (<https://kubernetes.io/docs/tasks/job/indexed-parallel-processing-static/>).
const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// The variable a sharded Job's container reads its index from, declared through the
/// downward API so the manifest itself says where `--shard` comes from.
pub const SHARD_INDEX_ENV: &str = "GPUSHARE_SHARD_INDEX";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// One rendered file: a name and its YAML documents.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedFile {
    pub name: String,
    pub yaml: String,
}

/// The sharing strategies a scenario's modes need, each with the modes it runs.
pub fn strategies(scenario: &Scenario) -> BTreeMap<Strategy, Vec<&'static str>> {
    let mut by_strategy: BTreeMap<Strategy, Vec<&'static str>> = BTreeMap::new();
    for mode in &scenario.modes {
        let strategy = match mode {
            ModeSetting::Exclusive | ModeSetting::TimeSlicing => Strategy::TimeSlicing,
            ModeSetting::Mps(_) => Strategy::Mps,
            ModeSetting::Mig(_) => Strategy::Mig,
        };
        let modes = by_strategy.entry(strategy).or_default();
        if !modes.contains(&mode.name()) {
            modes.push(mode.name());
        }
    }
    // A MIG comparison needs its exclusive baseline on the MIG node: whole-GPU runs
    // cannot stand for a MIG instance's.
    if let (Some(mig), Some(plain)) = (
        by_strategy.get(&Strategy::Mig).cloned(),
        by_strategy.get(&Strategy::TimeSlicing).cloned(),
    ) {
        if plain == ["exclusive"] {
            by_strategy.remove(&Strategy::TimeSlicing);
            let mut modes = vec!["exclusive"];
            modes.extend(mig);
            by_strategy.insert(Strategy::Mig, modes);
        }
    }
    by_strategy
}

/// Tenant instance names across every configuration of the sweep, in plan order.
fn tenant_names(scenario: &Scenario) -> Vec<String> {
    let plan = Plan::expand(scenario);
    let mut names: Vec<String> = vec![];
    for config in &plan.configs {
        for tenant in &config.tenants {
            if !names.contains(&tenant.name) {
                names.push(tenant.name.clone());
            }
        }
    }
    names
}

/// A DNS-1123 label from any text: lowercase alphanumerics and `-`, at most 63.
pub fn dns_label(text: &str) -> String {
    let mut label: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while label.contains("--") {
        label = label.replace("--", "-");
    }
    let label = label.trim_matches('-');
    let label: String = label.chars().take(63).collect();
    let label = label.trim_end_matches('-').to_string();
    if label.is_empty() {
        "gpushare".to_string()
    } else {
        label
    }
}

/// The study's namespace: `--namespace`, or `gpushare-<scenario>`.
pub fn namespace_name(scenario: &Scenario, opts: &RenderOptions) -> String {
    opts.namespace
        .clone()
        .unwrap_or_else(|| dns_label(&format!("gpushare-{}", scenario.name)))
}

fn labels(scenario: &Scenario, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "gpushare".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            dns_label(&scenario.name),
        ),
    ]);
    for (k, v) in pairs {
        labels.insert(k.to_string(), v.to_string());
    }
    labels
}

fn meta(name: &str, namespace: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

fn token_env() -> EnvVar {
    EnvVar {
        name: "GPUSHARE_TOKEN".to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "gpushare-token".to_string(),
                key: "token".to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The scenario volume and a writable /tmp (the root filesystem is read-only).
fn volumes() -> (Vec<Volume>, Vec<VolumeMount>) {
    (
        vec![
            Volume {
                name: "scenario".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "gpushare-scenario".to_string(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tmp".to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ],
        vec![
            VolumeMount {
                name: "scenario".to_string(),
                mount_path: SCENARIO_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
        ],
    )
}

/// The spec of a pod that runs `gpushare ARGS` in one container named `container`, as
/// every pod gpushare renders does: never restarted, as a non-root user, on a read-only
/// root filesystem with the scenario volume and a writable /tmp, on `node_selector`'s nodes.
/// Callers add what differs (affinity, the host's IPC) with struct update syntax.
fn gpushare_pod(
    container: &str,
    opts: &RenderOptions,
    args: Vec<String>,
    env: Option<Vec<EnvVar>>,
    resources: ResourceRequirements,
    node_selector: BTreeMap<String, String>,
) -> PodSpec {
    let (volumes, mounts) = volumes();
    PodSpec {
        restart_policy: Some("Never".to_string()),
        security_context: Some(pod_security()),
        node_selector: Some(node_selector),
        containers: vec![Container {
            name: container.to_string(),
            image: Some(opts.image.clone()),
            image_pull_policy: Some("IfNotPresent".to_string()),
            command: Some(vec!["gpushare".to_string()]),
            args: Some(args),
            env,
            resources: Some(resources),
            security_context: Some(container_security()),
            volume_mounts: Some(mounts),
            ..Container::default()
        }],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

/// A GPU container's resources: the tenant CPU and memory asked for, one `gpu_resource`,
/// and its memory as the limit.
fn gpu_resources(opts: &RenderOptions, gpu_resource: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(quantities(&[
            ("cpu", &opts.tenant_cpu),
            ("memory", &opts.tenant_memory),
            (gpu_resource, "1"),
        ])),
        limits: Some(quantities(&[
            ("memory", &opts.tenant_memory),
            (gpu_resource, "1"),
        ])),
        ..ResourceRequirements::default()
    }
}

/// The node selector for a group's pods.
fn node_selector(opts: &RenderOptions, default: (&str, String)) -> BTreeMap<String, String> {
    match &opts.placement {
        Placement::Label => BTreeMap::from([(default.0.to_string(), default.1)]),
        Placement::Node(name) => BTreeMap::from([(HOSTNAME_KEY.to_string(), name.clone())]),
        Placement::Selector(k, v) => BTreeMap::from([(k.clone(), v.clone())]),
    }
}

fn to_yaml<T: Serialize>(docs: &[T]) -> Result<String, KubernetesError> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(doc).map_err(KubernetesError::Yaml)?);
    }
    Ok(out)
}

/// A manifest of any kind, for files that hold several.
#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    Namespace(Box<Namespace>),
    Secret(Box<Secret>),
    ConfigMap(Box<ConfigMap>),
    Service(Box<Service>),
    Pod(Box<Pod>),
    Job(Box<Job>),
}

/// Renders every file for the scenario.
pub fn render(
    scenario: &Scenario,
    source: &str,
    opts: &RenderOptions,
) -> Result<Vec<RenderedFile>, KubernetesError> {
    let ns = namespace_name(scenario, opts);
    let mut files = vec![RenderedFile {
        name: "study.yaml".to_string(),
        yaml: to_yaml(&study_objects(scenario, source, &ns, opts))?,
    }];
    let n_tenants = tenant_names(scenario).len();
    let strategies = strategies(scenario);
    match opts.nodes {
        Some(nodes) => {
            if opts.per_node == PerNode::Shard {
                scenario::check_shard_count(
                    &scenario.name,
                    nodes,
                    Plan::expand(scenario).configs.len(),
                )?;
            }
            files.push(RenderedFile {
                name: "job.yaml".to_string(),
                yaml: to_yaml(&[Object::Job(Box::new(indexed_job(
                    scenario, &ns, opts, nodes,
                )))])?,
            });
        }
        None => {
            let configs: BTreeMap<String, String> = strategies
                .keys()
                .map(|&s| {
                    let config = device_plugin::config_for(s, n_tenants);
                    device_plugin::check(&s.config_name(), &config)?;
                    let yaml = serde_yaml_ng::to_string(&config).map_err(KubernetesError::Yaml)?;
                    Ok((s.config_name(), yaml))
                })
                .collect::<Result<_, KubernetesError>>()?;
            let plugin = ConfigMap {
                metadata: ObjectMeta {
                    name: Some("gpushare-device-plugin-configs".to_string()),
                    namespace: Some(opts.device_plugin_namespace.clone()),
                    labels: Some(labels(scenario, &[])),
                    ..ObjectMeta::default()
                },
                data: Some(configs),
                ..ConfigMap::default()
            };
            files.push(RenderedFile {
                name: "device-plugin.yaml".to_string(),
                yaml: to_yaml(&[Object::ConfigMap(Box::new(plugin))])?,
            });
            for (strategy, modes) in &strategies {
                files.push(RenderedFile {
                    name: format!("{}.yaml", strategy.name()),
                    yaml: to_yaml(&strategy_objects(scenario, &ns, opts, *strategy, modes))?,
                });
            }
        }
    }
    Ok(files)
}

fn study_objects(scenario: &Scenario, source: &str, ns: &str, opts: &RenderOptions) -> Vec<Object> {
    let mut objects = vec![Object::Namespace(Box::new(Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_string()),
            labels: Some(labels(scenario, &[])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }))];
    if opts.nodes.is_none() {
        objects.push(Object::Secret(Box::new(Secret {
            metadata: meta("gpushare-token", ns, labels(scenario, &[])),
            string_data: Some(BTreeMap::from([("token".to_string(), opts.token.clone())])),
            type_: Some("Opaque".to_string()),
            ..Secret::default()
        })));
    }
    objects.push(Object::ConfigMap(Box::new(ConfigMap {
        metadata: meta("gpushare-scenario", ns, labels(scenario, &[])),
        data: Some(BTreeMap::from([(
            SCENARIO_KEY.to_string(),
            source.to_string(),
        )])),
        ..ConfigMap::default()
    })));
    objects
}

/// The runner's pod and Service name for a strategy.
pub fn runner_name(strategy: Strategy) -> String {
    format!("runner-{}", strategy.name())
}

fn strategy_objects(
    scenario: &Scenario,
    ns: &str,
    opts: &RenderOptions,
    strategy: Strategy,
    modes: &[&str],
) -> Vec<Object> {
    let runner = runner_name(strategy);
    let group = [(STRATEGY_LABEL, strategy.name())];
    let runner_labels = labels(scenario, &[group[0], (COMPONENT_LABEL, "runner")]);
    let selector = node_selector(opts, (CONFIG_LABEL, strategy.config_name()));
    let mut objects = vec![Object::Service(Box::new(Service {
        metadata: meta(&runner, ns, runner_labels.clone()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            // Tenants dial as soon as they start; the runner has no readiness probe.
            publish_not_ready_addresses: Some(true),
            selector: Some(runner_labels.clone()),
            ports: Some(vec![ServicePort {
                name: Some("workers".to_string()),
                port: RUNNER_PORT,
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }))];
    let runner_args = vec![
        "run".to_string(),
        format!("{SCENARIO_DIR}/{SCENARIO_KEY}"),
        "--isolation".to_string(),
        "tcp".to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{RUNNER_PORT}"),
        "--modes".to_string(),
        modes.join(","),
        "--out".to_string(),
        "/tmp/study".to_string(),
        "--study-to-stdout".to_string(),
    ];
    objects.push(Object::Pod(Box::new(Pod {
        metadata: meta(&runner, ns, runner_labels),
        // The runner needs no GPU, but its host's network is where tenants dial; keep it
        // next to them so the barrier's Go reaches them at the same time.
        spec: Some(gpushare_pod(
            "runner",
            opts,
            runner_args,
            Some(vec![token_env()]),
            ResourceRequirements {
                requests: Some(quantities(&[("cpu", "500m"), ("memory", "512Mi")])),
                limits: Some(quantities(&[("memory", "2Gi")])),
                ..ResourceRequirements::default()
            },
            selector.clone(),
        )),
        ..Pod::default()
    })));
    let gpu_resource = match (strategy, scenario.modes.iter().find_map(mig_profile)) {
        (Strategy::Mig, Some(profile)) => format!("nvidia.com/mig-{profile}"),
        _ => GPU_RESOURCE.to_string(),
    };
    for tenant in tenant_names(scenario) {
        let name = dns_label(&format!("tenant-{tenant}-{}", strategy.name()));
        let tenant_labels = labels(scenario, &[group[0], (COMPONENT_LABEL, "tenant")]);
        let args = vec![
            "worker".to_string(),
            "--connect".to_string(),
            format!("{runner}:{RUNNER_PORT}"),
            "--tenant".to_string(),
            tenant.clone(),
            "--redial".to_string(),
            "--dial-timeout-s".to_string(),
            "600".to_string(),
        ];
        objects.push(Object::Pod(Box::new(Pod {
            metadata: meta(&name, ns, tenant_labels),
            spec: Some(PodSpec {
                // The NVIDIA device plugin mounts its MPS daemon's pipe and shm directories
                // into each container it gives an MPS share, so the pod's own IPC namespace
                // suffices there; `--mps-host-ipc` is for clusters whose MPS daemon the
                // clients reach through the host's (kubernetes/README.md, "MPS and IPC").
                host_ipc: (strategy == Strategy::Mps && opts.mps_host_ipc).then_some(true),
                // Every tenant of a strategy on the same node: the same GPU is shared.
                affinity: Some(Affinity {
                    pod_affinity: Some(PodAffinity {
                        required_during_scheduling_ignored_during_execution: Some(vec![
                            PodAffinityTerm {
                                label_selector: Some(LabelSelector {
                                    match_labels: Some(BTreeMap::from([
                                        (STRATEGY_LABEL.to_string(), strategy.name().to_string()),
                                        (COMPONENT_LABEL.to_string(), "runner".to_string()),
                                    ])),
                                    ..LabelSelector::default()
                                }),
                                topology_key: HOSTNAME_KEY.to_string(),
                                ..PodAffinityTerm::default()
                            },
                        ]),
                        ..PodAffinity::default()
                    }),
                    ..Affinity::default()
                }),
                ..gpushare_pod(
                    "worker",
                    opts,
                    args,
                    Some(vec![token_env()]),
                    gpu_resources(opts, &gpu_resource),
                    selector.clone(),
                )
            }),
            ..Pod::default()
        })));
    }
    objects
}

fn mig_profile(mode: &ModeSetting) -> Option<&str> {
    match mode {
        ModeSetting::Mig(mig) => Some(&mig.profile),
        _ => None,
    }
}

/// The name of the Indexed Job `--nodes` renders.
pub fn job_name(scenario: &Scenario) -> String {
    dns_label(&format!("gpushare-{}", scenario.name))
}

/// One index per GPU node, spread one per host, each running the whole scenario (or its
/// shard of the sweep) with its workers as processes in one container that holds the
/// node's whole GPU (a node whose device plugin does not share: gpushare's own modes run
/// inside).
fn indexed_job(scenario: &Scenario, ns: &str, opts: &RenderOptions, nodes: u32) -> Job {
    let name = job_name(scenario);
    let pod_labels = labels(scenario, &[(COMPONENT_LABEL, "node-study")]);
    let mut args = vec![
        "run".to_string(),
        format!("{SCENARIO_DIR}/{SCENARIO_KEY}"),
        "--out".to_string(),
        "/tmp/study".to_string(),
        "--study-to-stdout".to_string(),
    ];
    let mut env = vec![];
    if opts.per_node == PerNode::Shard {
        // The kubelet expands `$(VAR)` in args from the container's environment.
        args.push("--shard".to_string());
        args.push(format!("$({SHARD_INDEX_ENV})/{nodes}"));
        env.push(EnvVar {
            name: SHARD_INDEX_ENV.to_string(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        });
    }
    let nodes = i32::try_from(nodes).unwrap_or(i32::MAX);
    Job {
        metadata: meta(&name, ns, pod_labels.clone()),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".to_string()),
            completions: Some(nodes),
            parallelism: Some(nodes),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    affinity: Some(Affinity {
                        pod_anti_affinity: Some(PodAntiAffinity {
                            required_during_scheduling_ignored_during_execution: Some(vec![
                                PodAffinityTerm {
                                    label_selector: Some(LabelSelector {
                                        match_labels: Some(pod_labels),
                                        ..LabelSelector::default()
                                    }),
                                    topology_key: HOSTNAME_KEY.to_string(),
                                    ..PodAffinityTerm::default()
                                },
                            ]),
                            ..PodAntiAffinity::default()
                        }),
                        ..Affinity::default()
                    }),
                    ..gpushare_pod(
                        "study",
                        opts,
                        args,
                        (!env.is_empty()).then_some(env),
                        gpu_resources(opts, GPU_RESOURCE),
                        node_selector(opts, (SHARING_STRATEGY_LABEL, "none".to_string())),
                    )
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}
