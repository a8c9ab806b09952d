use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::feasibility::FeasibilityArgs;
use super::{exit, CliError};
use crate::isolation::{ContainerIsolation, Isolation, ProcessIsolation, TcpIsolation};
use crate::limits;
use crate::live::{LiveStudy, StudyLabels};
use crate::metrics;
use crate::monitor::dcgm::GpuLabels;
use crate::monitor::{exporter, MonitorConfig};
use crate::report::{self, Format};
use crate::results::store;
use crate::runner::{self, Progress, StudyInput};
use crate::scenario::{self, IsolationKind, Plan, Shard, ShardSpec};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A scenario file, or the name of a shipped scenario (see `gpushare list`).
    /// Without it, the shipped default for this host runs.
    pub scenario: Option<PathBuf>,
    /// Write the study into exactly this directory [default: results/<timestamp>-<scenario>].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace the study already in --out, and accept a plan beyond the size limits
    /// (runs, workers per run, estimated wall time; README, "Plan size").
    #[arg(long)]
    pub force: bool,
    /// Override every run's measured window: `30s`, `500ms`, `2m`, or seconds.
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Override the scenario's number of repetitions.
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(limits::cli::REPETITIONS.min..=limits::cli::REPETITIONS.max))]
    pub repetitions: Option<u32>,
    /// Print the expanded plan and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How tenants are started: `process` (a child process each) or `container` (a
    /// container each on the Docker engine at DOCKER_HOST, image from the scenario's
    /// `[container]` table, by default the test image `scripts/build-test-image.sh`
    /// builds; images are never pulled) [default: the scenario's `run.isolation`, else
    /// process].
    #[arg(long, value_enum)]
    pub isolation: Option<IsolationKind>,
    /// How to print the report at the end (run.json is always written).
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// How often workers send their samples, in milliseconds.
    #[arg(long, default_value_t = 100, hide = true, value_parser = millis(limits::cli::FLUSH_INTERVAL_MS))]
    pub flush_interval_ms: u64,
    /// How often the GPU monitor samples NVML during runs with GPU tenants, in
    /// milliseconds (at most 60000); 0 turns it off.
    #[arg(long, default_value_t = 100, value_parser = millis(limits::cli::MONITOR_INTERVAL_MS))]
    pub monitor_interval_ms: u64,
    /// How often the monitor also reads the metrics that cost NVML the most CPU (the energy
    /// counter, each GPU process's memory and utilization), in milliseconds. Energy between
    /// two counter readings is integrated from the power samples. At most 600000.
    #[arg(long, default_value_t = 1000, value_parser = millis(limits::cli::MONITOR_SLOW_INTERVAL_MS))]
    pub monitor_slow_interval_ms: u64,
    /// While the study runs, serve its live figures as Prometheus text on
    /// http://ADDR/metrics, e.g. 127.0.0.1:9401 (port 0 picks a free port, printed on
    /// stderr): runs finished of planned; the current run's phase; each of its tenants'
    /// items, throughput, step-time and latency quantiles so far, and SLO target; each
    /// finished run's verdict, STP and NP per tenant; all labelled by study, scenario,
    /// mode, config, repetition, tenant and workload. During runs the monitor samples,
    /// also the GPU's figures with dcgm-exporter's names (DCGM_FI_DEV_GPU_UTIL, ...). The
    /// address is bound before the first run: one in use stops the study from starting.
    #[arg(long, value_name = "ADDR", value_parser = exporter::parse_addr)]
    pub prometheus: Option<SocketAddr>,
    #[command(flatten)]
    pub feasibility: FeasibilityArgs,
    /// Run only the modes named here (comma-separated: `exclusive,time-slicing`), as a
    /// Kubernetes runner does on the node whose device plugin provides them.
    #[arg(long, value_delimiter = ',', value_name = "MODE,...")]
    pub modes: Vec<String>,
    /// Run only shard I of N of the sweep (`0/3`, `1/3`, `2/3`): the configurations c with
    /// c mod N = I, round-robin in the plan's order, each with every mode (its exclusive
    /// baseline included) and repetition. How each index of `k8s render --nodes N
    /// --per-node shard` runs its part; `gpushare merge` joins the shards into one study.
    #[arg(long, value_name = "I/N", value_parser = scenario::parse_shard)]
    pub shard: Option<ShardSpec>,
    /// After the study, print run.json on stdout as one line (gzip, base64, after the
    /// marker `GPUSHARE_STUDY_GZ_BASE64`) instead of the report: how a runner pod hands
    /// its study to `gpushare k8s run` through its log.
    #[arg(long, hide = true)]
    pub study_to_stdout: bool,
    /// Where the `tcp` backend listens for workers [default: 0.0.0.0:7070; tcp-local:
    /// 127.0.0.1 on a free port].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The token `tcp` workers must present (required with `--isolation tcp`).
    #[arg(long, env = "GPUSHARE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Builds the backend; TCP ones listen and containers reach the engine at once, so this
/// runs inside the runtime.
async fn isolation(
    args: &RunArgs,
    scenario: &scenario::Scenario,
    out_dir: &Path,
) -> Result<Box<dyn Isolation>, CliError> {
    let accept_timeout =
        std::time::Duration::try_from_secs_f64(scenario.run.ready_timeout_s.max(0.0))
            .unwrap_or(std::time::Duration::MAX);
    Ok(match scenario.run.isolation {
        IsolationKind::Process => {
            Box::new(ProcessIsolation::new(None).map_err(runner::RunnerError::from)?)
        }
        IsolationKind::Container => {
            let settings = scenario.container.clone().unwrap_or_default();
            let study_id = out_dir
                .file_name()
                .map_or_else(|| "study".into(), |n| n.to_string_lossy().into_owned());
            let (isolation, removed) = ContainerIsolation::connect(settings, &study_id, None)
                .await
                .map_err(runner::RunnerError::from)?;
            for line in &removed {
                runner::say(&format!(
                    "removed container {line}: left by a gpushare run that ended without cleaning up"
                ));
            }
            Box::new(isolation)
        }
        IsolationKind::Tcp => {
            let token = match args.token.as_deref() {
                Some(token) if !token.is_empty() => token.to_string(),
                _ => {
                    return Err(CliError::Usage(
                        "--isolation tcp needs a token: pass --token or set GPUSHARE_TOKEN".into(),
                    ))
                }
            };
            let addr = args.listen.as_deref().unwrap_or("0.0.0.0:7070");
            let tcp = TcpIsolation::listen(addr, token, accept_timeout, None)
                .await
                .map_err(runner::RunnerError::from)?;
            runner::say(&format!(
                "workers dial {} (--isolation tcp)",
                tcp.local_addr()
            ));
            Box::new(tcp)
        }
        IsolationKind::TcpLocal => {
            let exe = std::env::current_exe().map_err(|e| {
                runner::RunnerError::from(crate::isolation::IsolationError::CurrentExe(e))
            })?;
            let token = args.token.clone().unwrap_or_else(random_token);
            let addr = args.listen.as_deref().unwrap_or("127.0.0.1:0");
            Box::new(
                TcpIsolation::listen(addr, token, accept_timeout, Some(exe))
                    .await
                    .map_err(runner::RunnerError::from)?,
            )
        }
    })
}

/// A fresh token for workers this runner starts itself.
pub(super) fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

/// A clap parser for a number of milliseconds in `limit`.
fn millis(limit: limits::IntLimit) -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(limit.min as u64..=limit.max as u64)
}

/// Seconds from `30s`, `500ms`, `2m` (humantime) or a plain number of seconds.
fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds = match text.trim().parse::<f64>() {
        Ok(s) => s,
        Err(_) => humantime::parse_duration(text.trim())
            .map_err(|e| format!("{e}; write e.g. 30s, 500ms, 2m or a number of seconds"))?
            .as_secs_f64(),
    };
    limits::cli::DURATION_S.check(seconds)
}

pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let scenario_arg = match &args.scenario {
        Some(path) => path.clone(),
        None => {
            let (name, why) = scenario::default_scenario(&crate::gpu::host_gpus());
            runner::say(&format!(
                "no scenario given: running the shipped `{name}` ({why})"
            ));
            PathBuf::from(name)
        }
    };
    let (mut scenario, source, path) = scenario::resolve(&scenario_arg)?;
    if let Some(duration_s) = args.duration {
        scenario::override_duration(&mut scenario, duration_s)?;
    }
    if let Some(n) = args.repetitions {
        scenario.run.repetitions = n;
    }
    // Counted before anything is expanded, so a plan too large to run is refused at once.
    let budget = scenario::check_budget(&scenario, args.force)?;
    if let Some(isolation) = args.isolation {
        scenario.run.isolation = isolation;
    }
    let mut plan = Plan::expand(&scenario);
    let full_runs = plan.runs.len();
    let shard = match args.shard {
        Some(spec) => {
            let shard = Shard::new(&scenario.name, spec, plan.configs.len())?;
            plan.shard(shard);
            Some(shard)
        }
        None => None,
    };
    if !args.modes.is_empty() {
        let known: Vec<&str> = scenario.modes.iter().map(|m| m.name()).collect();
        if let Some(unknown) = args.modes.iter().find(|m| !known.contains(&m.as_str())) {
            return Err(CliError::Usage(format!(
                "--modes names `{unknown}`, which the scenario does not have (it has: {})",
                known.join(", ")
            )));
        }
        plan.runs
            .retain(|r| args.modes.iter().any(|m| m == r.mode.name()));
    }
    let calibration = args.feasibility.load_calibration()?;
    args.feasibility
        .check(&scenario, &plan, calibration.as_ref())?;
    if args.dry_run {
        if let Some(shard) = shard {
            println!("{}", describe_shard(shard, plan.configs.len()));
        }
        print!("{}", plan.describe(&scenario));
        if plan.runs.len() < full_runs {
            println!("estimated for the whole plan: {budget}");
        } else {
            println!("estimated: {budget}");
        }
        if scenario.run.isolation == IsolationKind::Container {
            print!("{}", describe_containers(&scenario, &plan));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // What this host and build lack fails every run: refuse before the first, with the fix.
    // Workers that dial in run elsewhere (pods on a GPU node): this host needs nothing.
    if scenario.run.isolation != IsolationKind::Tcp {
        crate::doctor::check_scenario(&scenario, &crate::doctor::diagnose())?;
    }
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => default_out_dir(&scenario.name),
    };
    if out_dir.join(store::RUN_FILE).exists() && !args.force {
        return Err(CliError::Usage(format!(
            "{} already holds a study: choose another --out, or add --force to replace it",
            out_dir.display()
        )));
    }
    let mut progress = Progress::new(plan.runs.len());
    if let Some(addr) = args.prometheus {
        let live = Arc::new(LiveStudy::new(
            StudyLabels {
                study: out_dir.file_name().map_or_else(
                    || out_dir.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                scenario: scenario.name.clone(),
            },
            plan.clone(),
            (args.monitor_interval_ms > 0).then(monitored_gpu).flatten(),
        ));
        let scraped = live.clone();
        let bound = exporter::serve(addr, Arc::new(move || scraped.render()))?;
        runner::say(&format!(
            "serving the study's live figures as Prometheus text on http://{bound}/metrics"
        ));
        progress = progress.observed_by(live);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    let isolation = runtime.block_on(isolation(&args, &scenario, &out_dir))?;
    if let Some(shard) = shard {
        progress.note(&describe_shard(shard, plan.configs.len()));
    }
    // The budget counts the whole plan; a shard or a --modes subset runs its part of it.
    let estimated_s = budget.estimated_s * plan.runs.len() as f64 / full_runs.max(1) as f64;
    progress.note(&format!(
        "running `{}` from {}: {} run(s), about {}, writing {}",
        scenario.name,
        path.display(),
        plan.runs.len(),
        scenario::wall_time(estimated_s),
        out_dir.join(store::RUN_FILE).display()
    ));
    let study = runtime.block_on(runner::run_study(
        StudyInput {
            scenario: &scenario,
            scenario_source: &source,
            scenario_path: &path,
            plan: &plan,
            shard,
            isolation: isolation.as_ref(),
            out_dir: out_dir.clone(),
            flush_interval_ms: args.flush_interval_ms,
            monitor: (args.monitor_interval_ms > 0).then_some(MonitorConfig {
                interval_ms: args.monitor_interval_ms,
                gpu_index: 0,
                slow_interval_ms: args.monitor_slow_interval_ms,
            }),
        },
        &progress,
    ))?;
    if args.study_to_stdout {
        let path = out_dir.join(store::RUN_FILE);
        let json = std::fs::read_to_string(&path).map_err(|source| {
            crate::results::store::StoreError::Read {
                path: path.clone(),
                source,
            }
        })?;
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            crate::kubernetes::transfer::encode(&json)
        );
    } else {
        // run.json is written; a reader that went away loses only the printed report.
        let _ = write!(std::io::stdout(), "{}", report::render(&study, args.format));
    }
    runner::say(&format!(
        "results: {} (re-render with `gpushare report {}`)",
        out_dir.join(store::RUN_FILE).display(),
        out_dir.display()
    ));
    let all_valid = metrics::analyze(&study)
        .runs
        .iter()
        .all(|r| r.verdict.valid);
    Ok(ExitCode::from(if study.interrupted {
        exit::INTERRUPTED
    } else if !all_valid || study.runs.len() < plan.runs.len() {
        exit::INVALID_RUN
    } else {
        exit::OK
    }))
}

/// Which configurations a shard runs, for `--dry-run` and the progress line.
fn describe_shard(shard: Shard, n_configs: usize) -> String {
    let configs: Vec<String> = shard
        .configs(n_configs)
        .iter()
        .map(|c| format!("c{c}"))
        .collect();
    format!(
        "shard {shard}: configuration(s) {} of {n_configs} (c mod {} = {}), every mode and repetition of each",
        configs.join(", "),
        shard.count,
        shard.index
    )
}

/// The GPU the runs' samplers read (NVML index 0), as dcgm-exporter labels it; `None`
/// where NVML sees none, and then no run samples one either.
fn monitored_gpu() -> Option<GpuLabels> {
    let gpu = crate::gpu::gpu_info(0).ok()?;
    let host = crate::environment::Environment::capture().host;
    Some(GpuLabels::of(&gpu, &host))
}

/// What `--dry-run` shows of each tenant's container: image, environment added, mounts,
/// devices and user (the sharing mode adds its own variables, MPS pipe mount and MIG
/// instance at run time).
fn describe_containers(scenario: &scenario::Scenario, plan: &Plan) -> String {
    use crate::isolation::container::GpuRequest;
    let settings = scenario.container.clone().unwrap_or_default();
    let mut out = String::from("containers (isolation = \"container\", never pulled):\n");
    let mut seen = std::collections::BTreeSet::new();
    for config in &plan.configs {
        for tenant in &config.tenants {
            let base = tenant
                .name
                .split_once('#')
                .map_or(tenant.name.as_str(), |(b, _)| b);
            if !seen.insert(base.to_string()) {
                continue;
            }
            let gpu = crate::workload::find(&tenant.workload)
                .is_ok_and(|w| w.device_for(&tenant.params) == crate::workload::Device::Gpu);
            let devices = match (&settings.gpus, gpu) {
                (_, false) => "none".to_string(),
                (GpuRequest::All, true) => "all GPUs".to_string(),
                (GpuRequest::Count(n), true) => format!("{n} GPU(s)"),
                (GpuRequest::Ids(ids), true) => ids.join(", "),
            };
            let env: Vec<String> = settings
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mounts: Vec<String> = settings
                .mounts
                .iter()
                .map(|m| {
                    format!(
                        "{}:{}{}",
                        m.source,
                        m.target,
                        if m.read_only { ":ro" } else { "" }
                    )
                })
                .collect();
            out.push_str(&format!(
                "  {base}: image {}, env [{}], mounts [{}], devices {devices} (MIG: the run's instance), user {}, network {}\n",
                settings.image_for(base),
                env.join(" "),
                mounts.join(" "),
                settings.user.as_deref().unwrap_or("the image's (under MPS: the runner's UID)"),
                settings.network,
            ));
        }
    }
    out
}

fn default_out_dir(scenario: &str) -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_else(|_| "study".to_string());
    Path::new("results").join(format!("{stamp}-{scenario}"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use crate::limits;
    use proptest::prelude::*;

    proptest! {
        /// Whatever `--duration` is given, it is refused with a message or it is a window
        /// the runner can wait for.
        #[test]
        fn any_duration_text_is_refused_or_usable(
            text in prop_oneof![
                any::<f64>().prop_map(|v| v.to_string()),
                any::<f64>().prop_map(|v| format!("{v:e}")),
                "[0-9]{1,25}(ms|s|m|h|d|y)?",
                ".{0,12}",
            ]
        ) {
            if let Ok(seconds) = parse_duration(&text) {
                prop_assert!(limits::cli::DURATION_S.contains(seconds));
                let wait = limits::duration_from_secs(seconds).unwrap();
                let _ = limits::deadline(std::time::Instant::now(), wait);
            }
        }
    }

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("30s"), Ok(30.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("2m"), Ok(120.0));
        assert_eq!(parse_duration("1.5"), Ok(1.5));
        assert_eq!(
            parse_duration("0").unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got 0"
        );
        assert_eq!(
            parse_duration("1e12").unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got 1000000000000"
        );
        assert_eq!(
            parse_duration("1e308").unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got 1e308"
        );
        assert_eq!(
            parse_duration("inf").unwrap_err(),
            "must be a number of seconds above 0 and at most 86400, got inf"
        );
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("write e.g. 30s"));
    }
}
