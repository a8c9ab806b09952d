//! `gpushare doctor`: what this host can run, and why not where it cannot.
//!
//! Gathers the CPU, the NVIDIA driver and GPUs (through the `gpu` module), the MPS
//! binaries and daemons (through `sharing::mps`), and whether this binary has the torch
//! workloads, then decides for each sharing mode whether it can run here. Deciding is a
//! pure function ([`assess`]) so every verdict is tested without a GPU. Reads only: it
//! never starts a daemon or changes a setting.

pub mod scenario;

pub use scenario::{check as check_scenario, HostError};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gpu::{self, ComputeMode, GpuError, GpuInfo, HostGpus, MigState};
use crate::sharing::mps::{self, MpsConfig, MpsHostProbe};

/// Everything `doctor` found, as printed and as `--format json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// gpushare's version.
    pub gpushare_version: String,
    /// The host's CPU.
    pub cpu: CpuSummary,
    /// The driver and GPUs; absent when NVML could not be read (see `gpu_problem`).
    pub host_gpus: Option<HostGpus>,
    /// Why there is no usable GPU, when there is none.
    pub gpu_problem: Option<String>,
    /// MPS binaries and running daemons.
    pub mps: MpsHostProbe,
    /// One verdict per sharing mode, in the order modes are documented.
    pub modes: Vec<ModeAvailability>,
    /// Whether the torch workloads are in this binary.
    pub torch: TorchSummary,
}

/// The host's CPU, from `/proc/cpuinfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSummary {
    /// Model name; absent when `/proc/cpuinfo` does not say.
    pub model: Option<String>,
    /// Logical CPUs (hardware threads) online.
    pub n_cores: usize,
}

/// Whether one sharing mode can run on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeAvailability {
    /// Mode name as written in scenario files.
    pub mode: String,
    /// Whether this host can run it now.
    pub available: bool,
    /// Where it can run, or why not and what to do.
    pub reason: String,
    /// Whether CPU tenants (the test fixtures, `device = "cpu"`) run in it here, GPU or
    /// not: exclusive and time-slicing are plain processes.
    #[serde(default)]
    pub cpu_tenants: bool,
}

/// Whether this binary has the torch (tch / libtorch) workloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchSummary {
    /// Whether it was built with the `torch` feature.
    pub built_with_torch: bool,
    /// What that means and how to change it.
    pub note: String,
}

/// Looks at this host.
pub fn diagnose() -> DoctorReport {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .map(|text| parse_cpuinfo(&text))
        .unwrap_or(CpuSummary {
            model: None,
            n_cores: 0,
        });
    let cpu = CpuSummary {
        n_cores: if cpu.n_cores == 0 {
            std::thread::available_parallelism().map_or(0, |n| n.get())
        } else {
            cpu.n_cores
        },
        ..cpu
    };
    let gpus = gpu::host_gpus().map_err(|error| gpu_problem(&error));
    let mps = mps::probe_host(&MpsConfig::from_env());
    assess(cpu, gpus, mps, cfg!(feature = "torch"))
}

/// Why NVML gave no GPUs, in the words `doctor` prints after "no NVIDIA GPU: ".
fn gpu_problem(error: &GpuError) -> String {
    match error {
        GpuError::NotBuilt => {
            "this gpushare was built without the `cuda` feature, so NVML is not compiled in"
                .to_string()
        }
        #[cfg(feature = "cuda")]
        GpuError::LoadingNvml { source } => format!("NVML could not be loaded ({source})"),
        other => crate::errors::error_chain(other),
    }
}

/// The model name and the number of logical CPUs in `/proc/cpuinfo` text.
pub fn parse_cpuinfo(text: &str) -> CpuSummary {
    let value = |line: &str| line.split_once(':').map(|(_, v)| v.trim().to_string());
    CpuSummary {
        model: text
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(value),
        n_cores: text
            .lines()
            .filter(|line| {
                line.split(':')
                    .next()
                    .is_some_and(|key| key.trim() == "processor")
            })
            .count(),
    }
}

/// Decides what this host can run from what was found.
pub fn assess(
    cpu: CpuSummary,
    gpus: Result<HostGpus, String>,
    mps: MpsHostProbe,
    built_with_torch: bool,
) -> DoctorReport {
    let (host_gpus, gpu_problem) = match gpus {
        Ok(host) if host.gpus.is_empty() => {
            (Some(host), Some("NVML loaded but sees no GPU".to_string()))
        }
        Ok(host) => (Some(host), None),
        Err(problem) => (None, Some(problem)),
    };
    let listed: &[GpuInfo] = host_gpus.as_ref().map_or(&[], |host| &host.gpus);
    let modes = match &gpu_problem {
        // The reason is on the GPU line once; the modes only point to it.
        Some(_) => ["exclusive", "time-slicing", "mps", "mig"]
            .into_iter()
            .map(|mode| {
                let cpu_tenants = matches!(mode, "exclusive" | "time-slicing");
                ModeAvailability {
                    mode: mode.to_string(),
                    available: false,
                    reason: if cpu_tenants {
                        "CPU tenants only (`gpushare run smoke-cpu`); GPU tenants need an \
                         NVIDIA GPU (see GPU above)"
                            .to_string()
                    } else {
                        "needs an NVIDIA GPU (see GPU above)".to_string()
                    },
                    cpu_tenants,
                }
            })
            .collect(),
        None => vec![
            exclusive(listed),
            time_slicing(listed),
            mps_mode(listed, &mps),
            mig(listed),
        ],
    };
    DoctorReport {
        gpushare_version: env!("CARGO_PKG_VERSION").to_string(),
        cpu,
        host_gpus,
        gpu_problem,
        mps,
        modes,
        torch: torch(built_with_torch),
    }
}

/// Why this host cannot run a study of `modes` (named as scenario files name them), in
/// one line, or `None` when it can. `cuda_sees_gpu` says whether the CUDA driver library
/// loaded and counted a GPU (`workload::probe::gpu_available`), which NVML finding one
/// does not promise. The GPU benches print this line and exit 0 on such hosts, so a
/// bench run without a GPU is a skip, not a failure.
pub fn cannot_run(report: &DoctorReport, modes: &[&str], cuda_sees_gpu: bool) -> Option<String> {
    if let Some(problem) = &report.gpu_problem {
        return Some(format!("no NVIDIA GPU: {problem}"));
    }
    if !cuda_sees_gpu {
        return Some(
            "no GPU for CUDA: NVML sees one, but the CUDA driver library (libcuda.so.1) did \
             not load or counted no device"
                .to_string(),
        );
    }
    modes
        .iter()
        .find_map(|name| match report.modes.iter().find(|m| m.mode == *name) {
            Some(verdict) if verdict.available => None,
            Some(verdict) => Some(format!("mode `{name}` cannot run here: {}", verdict.reason)),
            None => Some(format!("mode `{name}` is not one `gpushare doctor` knows")),
        })
}

fn verdict(mode: &str, available: bool, reason: String) -> ModeAvailability {
    ModeAvailability {
        mode: mode.to_string(),
        available,
        reason,
        cpu_tenants: matches!(mode, "exclusive" | "time-slicing"),
    }
}

fn gpu_names(gpus: &[&GpuInfo]) -> String {
    gpus.iter()
        .map(|g| format!("GPU {} ({})", g.index, g.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The GPUs whose compute mode lets a process create a context at all.
fn not_prohibited(gpus: &[GpuInfo]) -> Vec<&GpuInfo> {
    gpus.iter()
        .filter(|g| g.compute_mode != Some(ComputeMode::Prohibited))
        .collect()
}

fn exclusive(gpus: &[GpuInfo]) -> ModeAvailability {
    let usable = not_prohibited(gpus);
    if usable.is_empty() {
        return verdict(
            "exclusive",
            false,
            "every GPU is in compute mode Prohibited; `gpu-configs/setup_time_slicing.sh` \
             sets Default"
                .to_string(),
        );
    }
    verdict("exclusive", true, format!("on {}", gpu_names(&usable)))
}

fn time_slicing(gpus: &[GpuInfo]) -> ModeAvailability {
    // Default lets any number of processes hold contexts; an unknown mode is given the
    // benefit of the doubt, the run's own note will say what it found.
    let usable: Vec<&GpuInfo> = gpus
        .iter()
        .filter(|g| matches!(g.compute_mode, Some(ComputeMode::Default) | None))
        .collect();
    if usable.is_empty() {
        let modes = gpus
            .iter()
            .map(|g| {
                let mode = g
                    .compute_mode
                    .map_or("unknown".to_string(), |m| m.to_string());
                format!("GPU {} is {mode}", g.index)
            })
            .collect::<Vec<_>>()
            .join(", ");
        return verdict(
            "time-slicing",
            false,
            format!(
                "needs compute mode Default so several processes can hold contexts ({modes}); \
                 `gpu-configs/setup_time_slicing.sh` sets it"
            ),
        );
    }
    verdict("time-slicing", true, format!("on {}", gpu_names(&usable)))
}

fn mps_mode(gpus: &[GpuInfo], probe: &MpsHostProbe) -> ModeAvailability {
    let mut missing = Vec::new();
    if probe.control_path.is_none() {
        missing.push("nvidia-cuda-mps-control");
    }
    if probe.server_path.is_none() {
        missing.push("nvidia-cuda-mps-server");
    }
    if !missing.is_empty() {
        return verdict(
            "mps",
            false,
            format!(
                "{} not found on PATH (they come with the NVIDIA driver's compute utilities)",
                missing.join(" and ")
            ),
        );
    }
    if let Some(daemon) = probe.daemons.first() {
        return verdict(
            "mps",
            false,
            format!(
                "an MPS control daemon is already running (pid {}, user id {}, pipe directory \
                 {}); gpushare starts its own, so stop that one with `gpu-configs/disable_mps.sh`",
                daemon.pid, daemon.uid, daemon.pipe_dir
            ),
        );
    }
    let usable = not_prohibited(gpus);
    if usable.is_empty() {
        return verdict(
            "mps",
            false,
            "every GPU is in compute mode Prohibited, where not even the MPS server may \
             create a context; `gpu-configs/setup_time_slicing.sh` sets Default"
                .to_string(),
        );
    }
    verdict("mps", true, format!("on {}", gpu_names(&usable)))
}

fn mig(gpus: &[GpuInfo]) -> ModeAvailability {
    let with_instances: Vec<String> = gpus
        .iter()
        .filter_map(|g| match &g.mig {
            Some(MigState::Enabled { instances, .. }) if !instances.is_empty() => {
                let profiles: Vec<&str> = instances.iter().map(|i| i.profile.as_str()).collect();
                Some(format!("GPU {} ({})", g.index, profiles.join(", ")))
            }
            _ => None,
        })
        .collect();
    if !with_instances.is_empty() {
        return verdict(
            "mig",
            true,
            format!("instances on {}", with_instances.join("; ")),
        );
    }
    let states = gpus
        .iter()
        .map(|g| {
            let state = match &g.mig {
                Some(MigState::Enabled { .. }) => "enabled without instances".to_string(),
                Some(state) => state.to_string(),
                None => "unknown".to_string(),
            };
            format!("GPU {}: MIG {state}", g.index)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let any_capable = gpus
        .iter()
        .any(|g| !matches!(g.mig, Some(MigState::NotSupported)));
    let advice = if any_capable {
        "enable MIG and create instances with `gpu-configs/setup_mig.sh`"
    } else {
        "these GPUs cannot be partitioned"
    };
    verdict(
        "mig",
        false,
        format!("needs MIG enabled with instances ({states}); {advice}"),
    )
}

fn torch(built_with_torch: bool) -> TorchSummary {
    TorchSummary {
        built_with_torch,
        note: if built_with_torch {
            "built with the `torch` feature: model workloads (train.*, infer.batch.*, serve.*) \
             are available; libtorch must be on the library path at run time"
                .to_string()
        } else {
            "not built with the `torch` feature: model workloads (train.*, infer.batch.*, \
             serve.*) are unavailable; rebuild with `cargo build --release --features torch` \
             (README, \"Torch workloads\")"
                .to_string()
        },
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "gpushare {} doctor", self.gpushare_version)?;
        let model = self.cpu.model.as_deref().unwrap_or("unknown model");
        writeln!(f, "CPU     {model}, {} logical cores", self.cpu.n_cores)?;
        if let Some(host) = &self.host_gpus {
            let cuda = host
                .cuda_driver_version
                .as_deref()
                .map_or(String::new(), |v| format!(" (CUDA {v})"));
            writeln!(f, "Driver  {}{cuda}", host.driver_version)?;
            for g in &host.gpus {
                write_gpu(f, g)?;
            }
        }
        if let Some(problem) = &self.gpu_problem {
            writeln!(f, "GPU     no NVIDIA GPU: {problem}")?;
        }
        let found = |path: &Option<std::path::PathBuf>| {
            path.as_ref()
                .map_or("not found".to_string(), |p| p.display().to_string())
        };
        let daemons = if self.mps.daemons.is_empty() {
            "no daemon running".to_string()
        } else {
            let pids: Vec<String> = self.mps.daemons.iter().map(|d| d.pid.to_string()).collect();
            format!("daemon running (pid {})", pids.join(", "))
        };
        writeln!(
            f,
            "MPS     control {}, server {}, {daemons}",
            found(&self.mps.control_path),
            found(&self.mps.server_path)
        )?;
        writeln!(f)?;
        writeln!(f, "Modes")?;
        for mode in &self.modes {
            let answer = match (mode.available, mode.cpu_tenants) {
                (true, _) => "yes",
                (false, true) => "cpu",
                (false, false) => "no ",
            };
            writeln!(f, "  {:<13} {answer}  {}", mode.mode, mode.reason)?;
        }
        writeln!(f)?;
        let torch = if self.torch.built_with_torch {
            "yes"
        } else {
            "no"
        };
        writeln!(f, "Torch   {torch}: {}", self.torch.note)
    }
}

fn write_gpu(f: &mut fmt::Formatter<'_>, g: &GpuInfo) -> fmt::Result {
    let memory = g
        .memory_total_bytes
        .map_or("memory unknown".to_string(), gib);
    let compute = g
        .compute_mode
        .map_or("unknown".to_string(), |m| m.to_string());
    let mig = g
        .mig
        .as_ref()
        .map_or("unknown".to_string(), |m| m.to_string());
    writeln!(
        f,
        "GPU {}   {}, {}, {memory}, compute mode {compute}, MIG {mig}",
        g.index, g.name, g.uuid
    )?;
    if let Some(MigState::Enabled { instances, .. }) = &g.mig {
        for instance in instances {
            let memory = instance.memory_total_bytes.map_or("?".to_string(), gib);
            writeln!(
                f,
                "          MIG {} {} ({memory})",
                instance.profile, instance.uuid
            )?;
        }
    }
    for note in &g.notes {
        writeln!(f, "          note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::gpu::MigInstance;
    use crate::sharing::mps::RunningDaemon;

    fn h200(compute_mode: ComputeMode, mig: MigState) -> HostGpus {
        HostGpus {
            driver_version: "580.159.04".into(),
            cuda_driver_version: Some("13.0".into()),
            gpus: vec![GpuInfo {
                index: 0,
                name: "NVIDIA H200".into(),
                uuid: "GPU-11111111-2222-3333-4444-555555555555".into(),
                memory_total_bytes: Some(150_754_820_096),
                compute_mode: Some(compute_mode),
                mig: Some(mig),
                notes: Vec::new(),
            }],
        }
    }

    fn mps_ready() -> MpsHostProbe {
        MpsHostProbe {
            control_path: Some(PathBuf::from("/usr/bin/nvidia-cuda-mps-control")),
            server_path: Some(PathBuf::from("/usr/bin/nvidia-cuda-mps-server")),
            daemons: Vec::new(),
        }
    }

    fn cpu() -> CpuSummary {
        CpuSummary {
            model: Some("AMD EPYC 9654 96-Core Processor".into()),
            n_cores: 16,
        }
    }

    fn mode<'a>(report: &'a DoctorReport, name: &str) -> &'a ModeAvailability {
        report.modes.iter().find(|m| m.mode == name).unwrap()
    }

    const MIG_OFF: MigState = MigState::Disabled {
        pending_enabled: false,
    };

    #[test]
    fn the_gpu_machine_runs_everything_but_mig() {
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            mps_ready(),
            false,
        );
        insta::assert_snapshot!(report.to_string());
    }

    #[test]
    fn without_nvml_one_line_says_why_and_no_mode_runs() {
        let report = assess(
            cpu(),
            Err(
                "NVML could not be loaded (libnvidia-ml.so.1: cannot open shared object file)"
                    .into(),
            ),
            mps_ready(),
            false,
        );
        let text = report.to_string();
        assert!(text.contains(
            "GPU     no NVIDIA GPU: NVML could not be loaded (libnvidia-ml.so.1: cannot open \
             shared object file)\n"
        ));
        assert_eq!(text.matches("no NVIDIA GPU").count(), 1, "{text}");
        // NVML's error is said once, on the GPU line, not again for every mode.
        assert_eq!(
            text.matches("NVML could not be loaded").count(),
            1,
            "{text}"
        );
        assert!(report.modes.iter().all(|m| !m.available));
        assert_eq!(
            mode(&report, "mps").reason,
            "needs an NVIDIA GPU (see GPU above)"
        );
        assert!(text.contains(
            "  time-slicing  cpu  CPU tenants only (`gpushare run smoke-cpu`); GPU tenants need \
             an NVIDIA GPU (see GPU above)\n"
        ));
        assert!(text.contains("  exclusive     cpu  "), "{text}");
        assert!(text.contains("  mig           no   needs an NVIDIA GPU (see GPU above)\n"));
    }

    #[test]
    fn nvml_without_gpus_is_no_gpu() {
        let mut host = h200(ComputeMode::Default, MIG_OFF);
        host.gpus.clear();
        let report = assess(cpu(), Ok(host), mps_ready(), false);
        assert_eq!(
            report.gpu_problem.as_deref(),
            Some("NVML loaded but sees no GPU")
        );
        assert!(report.modes.iter().all(|m| !m.available));
    }

    #[test]
    fn mig_with_instances_is_available() {
        let mig = MigState::Enabled {
            pending_enabled: true,
            instances: vec![MigInstance {
                index: 0,
                uuid: "MIG-aaaa".into(),
                profile: "3g.71gb".into(),
                memory_total_bytes: Some(76_235_669_504),
            }],
        };
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, mig)),
            mps_ready(),
            false,
        );
        let verdict = mode(&report, "mig");
        assert!(verdict.available);
        assert_eq!(verdict.reason, "instances on GPU 0 (3g.71gb)");
        assert!(report
            .to_string()
            .contains("          MIG 3g.71gb MIG-aaaa (71.0 GiB)\n"));
    }

    #[test]
    fn mig_enabled_without_instances_or_unsupported_is_not() {
        let empty = MigState::Enabled {
            pending_enabled: true,
            instances: Vec::new(),
        };
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, empty)),
            mps_ready(),
            false,
        );
        assert_eq!(
            mode(&report, "mig").reason,
            "needs MIG enabled with instances (GPU 0: MIG enabled without instances); enable \
             MIG and create instances with `gpu-configs/setup_mig.sh`"
        );
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MigState::NotSupported)),
            mps_ready(),
            false,
        );
        assert!(mode(&report, "mig")
            .reason
            .ends_with("these GPUs cannot be partitioned"));
    }

    #[test]
    fn mps_needs_binaries_and_no_foreign_daemon() {
        let gpus = || Ok(h200(ComputeMode::Default, MIG_OFF));
        let missing = MpsHostProbe {
            server_path: None,
            ..mps_ready()
        };
        let report = assess(cpu(), gpus(), missing, false);
        assert_eq!(
            mode(&report, "mps").reason,
            "nvidia-cuda-mps-server not found on PATH (they come with the NVIDIA driver's \
             compute utilities)"
        );
        let busy = MpsHostProbe {
            daemons: vec![RunningDaemon {
                pid: 4242,
                uid: 1000,
                pipe_dir: "/tmp/nvidia-mps".into(),
            }],
            ..mps_ready()
        };
        let report = assess(cpu(), gpus(), busy, false);
        let verdict = mode(&report, "mps");
        assert!(!verdict.available);
        assert!(verdict.reason.contains("pid 4242"), "{}", verdict.reason);
        assert!(verdict.reason.contains("gpu-configs/disable_mps.sh"));
    }

    #[test]
    fn benches_skip_with_one_line_saying_why() {
        let mps_suite = ["exclusive", "time-slicing", "mps"];
        let mig_suite = ["exclusive", "mig"];
        let no_nvml = assess(
            cpu(),
            Err(
                "this gpushare was built without the `cuda` feature, so NVML is not compiled in"
                    .into(),
            ),
            mps_ready(),
            false,
        );
        assert_eq!(
            cannot_run(&no_nvml, &mps_suite, false).as_deref(),
            Some(
                "no NVIDIA GPU: this gpushare was built without the `cuda` feature, so NVML \
                 is not compiled in"
            )
        );

        let gpu_machine = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            mps_ready(),
            false,
        );
        assert_eq!(cannot_run(&gpu_machine, &mps_suite, true), None);
        assert_eq!(
            cannot_run(&gpu_machine, &mig_suite, true).as_deref(),
            Some(
                "mode `mig` cannot run here: needs MIG enabled with instances (GPU 0: MIG \
                 disabled (pending: disabled)); enable MIG and create instances with \
                 `gpu-configs/setup_mig.sh`"
            )
        );
        assert_eq!(
            cannot_run(&gpu_machine, &mps_suite, false).as_deref(),
            Some(
                "no GPU for CUDA: NVML sees one, but the CUDA driver library (libcuda.so.1) \
                 did not load or counted no device"
            )
        );
        assert_eq!(
            cannot_run(&gpu_machine, &["streams"], true).as_deref(),
            Some("mode `streams` is not one `gpushare doctor` knows")
        );

        let no_mps = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            MpsHostProbe {
                control_path: None,
                ..mps_ready()
            },
            false,
        );
        assert_eq!(
            cannot_run(&no_mps, &["exclusive", "time-slicing"], true),
            None
        );
        assert_eq!(
            cannot_run(&no_mps, &mps_suite, true).as_deref(),
            Some(
                "mode `mps` cannot run here: nvidia-cuda-mps-control not found on PATH (they \
                 come with the NVIDIA driver's compute utilities)"
            )
        );
    }

    #[test]
    fn prohibited_compute_mode_blocks_every_mode() {
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Prohibited, MIG_OFF)),
            mps_ready(),
            false,
        );
        for name in ["exclusive", "time-slicing", "mps", "mig"] {
            assert!(!mode(&report, name).available, "{name}");
        }
        assert!(mode(&report, "mps").reason.contains("Prohibited"));
    }

    #[test]
    fn exclusive_process_allows_mps_but_not_time_slicing() {
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::ExclusiveProcess, MIG_OFF)),
            mps_ready(),
            false,
        );
        assert!(mode(&report, "exclusive").available);
        assert!(mode(&report, "mps").available);
        let verdict = mode(&report, "time-slicing");
        assert!(!verdict.available);
        assert!(
            verdict.reason.contains("GPU 0 is Exclusive_Process"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn torch_says_how_to_build_it_in() {
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            mps_ready(),
            true,
        );
        assert!(report.torch.built_with_torch);
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            mps_ready(),
            false,
        );
        assert!(report.torch.note.contains("--features torch"));
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = assess(
            cpu(),
            Ok(h200(ComputeMode::Default, MIG_OFF)),
            mps_ready(),
            false,
        );
        let json = serde_json::to_string(&report).unwrap();
        let back: DoctorReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert!(json.contains(r#""compute_mode":"default""#), "{json}");
        assert!(
            json.contains(r#""mig":{"state":"disabled","pending_enabled":false}"#),
            "{json}"
        );
    }

    #[test]
    fn cpuinfo_gives_model_and_logical_cores() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 9654 96-Core Processor\n";
        assert_eq!(
            parse_cpuinfo(text),
            CpuSummary {
                model: Some("AMD EPYC 9654 96-Core Processor".into()),
                n_cores: 2
            }
        );
    }

    #[test]
    fn diagnose_reads_this_host() {
        let report = diagnose();
        assert!(report.cpu.n_cores >= 1);
        assert_eq!(report.modes.len(), 4);
        assert_eq!(report.torch.built_with_torch, cfg!(feature = "torch"));
        // What doctor says about the GPU agrees with NVML asked directly: the GPUs it lists
        // and no problem, or no GPU and the reason.
        match gpu::host_gpus() {
            Ok(host) if !host.gpus.is_empty() => {
                assert_eq!(report.gpu_problem, None);
                let seen = report.host_gpus.as_ref().map(|h| h.gpus.len());
                assert_eq!(seen, Some(host.gpus.len()));
            }
            Ok(_) => assert_eq!(
                report.gpu_problem.as_deref(),
                Some("NVML loaded but sees no GPU")
            ),
            Err(err) => {
                assert_eq!(report.gpu_problem, Some(gpu_problem(&err)));
                assert!(report.modes.iter().all(|m| !m.available), "{report}");
            }
        }
        let logical_cpus = std::fs::read_to_string("/proc/cpuinfo")
            .map(|text| text.lines().filter(|l| l.starts_with("processor")).count())
            .unwrap_or_default();
        if logical_cpus > 0 {
            assert_eq!(report.cpu.n_cores, logical_cpus);
        }
    }
}
