//! Whether this host and build can run a scenario, from what `doctor` found: the build's
//! workloads (the `torch` feature), an NVIDIA GPU for GPU tenants, the MPS control
//! program for `mps`, MIG instances of each profile asked for. `run` refuses a scenario
//! that fails here before its first run (exit 2); `validate --host` says the same.
//!
//! A pure function of the [`DoctorReport`], so every verdict is tested without a GPU.

use std::collections::BTreeSet;

use thiserror::Error;

use super::DoctorReport;
use crate::gpu::MigState;
use crate::scenario::Scenario;
use crate::sharing::ModeSetting;
use crate::workload::{self, Availability, Device, Params};

/// What this host or build lacks for a scenario, each with its fix.
#[derive(Debug, Error, PartialEq)]
#[error("checking this host for scenario `{scenario}`: {}", problems.join("; "))]
pub struct HostError {
    pub scenario: String,
    pub problems: Vec<String>,
}

/// Every reason this host cannot run `scenario`, or `Ok` when it can.
pub fn check(scenario: &Scenario, report: &DoctorReport) -> Result<(), HostError> {
    let problems = problems(scenario, report);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HostError {
            scenario: scenario.name.clone(),
            problems,
        })
    }
}

fn problems(scenario: &Scenario, report: &DoctorReport) -> Vec<String> {
    let mut problems = vec![];
    let mut gpu_tenants = vec![];
    for tenant in &scenario.tenants {
        let Ok(info) = workload::find(&tenant.workload) else {
            continue;
        };
        if let Availability::Unavailable(reason) = info.availability {
            problems.push(format!(
                "tenant `{}` ({}) cannot run with this build: {reason}",
                tenant.name, tenant.workload
            ));
            continue;
        }
        // Any point of a sweep that puts the tenant on the GPU needs one.
        let devices = tenant.params.get("device").map_or(vec![None], |values| {
            values.iter().map(Some).collect::<Vec<_>>()
        });
        let on_gpu = devices.into_iter().any(|value| {
            let params = Params(
                value
                    .map(|v| ("device".to_string(), v.clone()))
                    .into_iter()
                    .collect(),
            );
            info.device_for(&params) == Device::Gpu
        });
        if on_gpu {
            gpu_tenants.push(format!("`{}`", tenant.name));
        }
    }
    let has_gpu = report.gpu_problem.is_none();
    if !gpu_tenants.is_empty() && !has_gpu {
        problems.push(format!(
            "tenant(s) {} run on the GPU, but this host has no NVIDIA GPU ({}); run on a GPU host, or use CPU workloads (`gpushare run smoke-cpu`)",
            gpu_tenants.join(", "),
            report.gpu_problem.as_deref().unwrap_or("none found")
        ));
    }
    let kinds: BTreeSet<&str> = scenario.modes.iter().map(mode_kind).collect();
    for kind in kinds {
        match kind {
            "exclusive" | "time-slicing" if !gpu_tenants.is_empty() && has_gpu => {
                if let Some(reason) = unavailable(report, kind) {
                    problems.push(format!("mode `{kind}` cannot run here: {reason}"));
                }
            }
            "mps" => {
                if report.mps.control_path.is_none() {
                    problems.push(
                        "mode `mps` needs nvidia-cuda-mps-control, which is not on PATH (it comes with the NVIDIA driver's compute utilities; GPUSHARE_MPS_CONTROL names another)"
                            .to_string(),
                    );
                } else if !gpu_tenants.is_empty() && has_gpu {
                    if let Some(reason) = unavailable(report, "mps") {
                        problems.push(format!("mode `mps` cannot run here: {reason}"));
                    }
                }
            }
            "mig" => problems.extend(mig_problems(scenario, report)),
            _ => {}
        }
    }
    problems
}

fn mode_kind(mode: &ModeSetting) -> &'static str {
    match mode {
        ModeSetting::Exclusive => "exclusive",
        ModeSetting::TimeSlicing => "time-slicing",
        ModeSetting::Mps(_) => "mps",
        ModeSetting::Mig(_) => "mig",
    }
}

/// The doctor's reason when `mode` is unavailable.
fn unavailable<'a>(report: &'a DoctorReport, mode: &str) -> Option<&'a str> {
    report
        .modes
        .iter()
        .find(|m| m.mode == mode && !m.available)
        .map(|m| m.reason.as_str())
}

/// MIG needs a GPU with MIG enabled and an instance of every profile a run asks for.
fn mig_problems(scenario: &Scenario, report: &DoctorReport) -> Vec<String> {
    if let Some(problem) = &report.gpu_problem {
        return vec![format!(
            "mode `mig` needs an NVIDIA GPU with MIG instances, and this host has no NVIDIA GPU ({problem})"
        )];
    }
    if let Some(reason) = unavailable(report, "mig") {
        return vec![format!("mode `mig` cannot run here: {reason}")];
    }
    let present: BTreeSet<&str> = report
        .host_gpus
        .iter()
        .flat_map(|host| &host.gpus)
        .filter_map(|gpu| match &gpu.mig {
            Some(MigState::Enabled { instances, .. }) => Some(instances),
            _ => None,
        })
        .flatten()
        .map(|instance| instance.profile.as_str())
        .collect();
    let wanted: BTreeSet<&str> = scenario
        .modes
        .iter()
        .filter_map(|m| match m {
            ModeSetting::Mig(setting) => Some(setting.profile.as_str()),
            _ => None,
        })
        .chain(
            scenario
                .tenants
                .iter()
                .filter_map(|t| t.sharing.mig_profile.as_deref()),
        )
        .collect();
    let missing: Vec<&str> = wanted.difference(&present).copied().collect();
    if missing.is_empty() {
        return vec![];
    }
    vec![format!(
        "mode `mig` asks for profile(s) {}, but this host's MIG instances are {}; create them with `gpu-configs/setup_mig.sh --profiles {}`",
        missing.join(", "),
        present.into_iter().collect::<Vec<_>>().join(", "),
        missing.join(",")
    )]
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::doctor::{assess, CpuSummary};
    use crate::gpu::{ComputeMode, GpuInfo, HostGpus, MigInstance};
    use crate::sharing::mps::MpsHostProbe;

    fn scenario(modes: &str, tenants: &str) -> Scenario {
        crate::scenario::parse(
            Path::new("s.toml"),
            &format!("name = \"s\"\n{modes}\n{tenants}"),
        )
        .unwrap()
    }

    fn cpu() -> CpuSummary {
        CpuSummary {
            model: None,
            n_cores: 2,
        }
    }

    fn mps(found: bool) -> MpsHostProbe {
        MpsHostProbe {
            control_path: found.then(|| PathBuf::from("/usr/bin/nvidia-cuda-mps-control")),
            server_path: found.then(|| PathBuf::from("/usr/bin/nvidia-cuda-mps-server")),
            daemons: vec![],
        }
    }

    fn no_gpu() -> DoctorReport {
        assess(
            cpu(),
            Err("NVML could not be loaded".into()),
            mps(false),
            false,
        )
    }

    fn h200(mig: MigState) -> DoctorReport {
        let host = HostGpus {
            driver_version: "580".into(),
            cuda_driver_version: None,
            gpus: vec![GpuInfo {
                index: 0,
                name: "NVIDIA H200".into(),
                uuid: "GPU-0".into(),
                memory_total_bytes: None,
                compute_mode: Some(ComputeMode::Default),
                mig: Some(mig),
                notes: vec![],
            }],
        };
        assess(cpu(), Ok(host), mps(true), true)
    }

    const TS: &str = "[[modes]]\nmode = \"time-slicing\"";
    const CPU_TENANT: &str =
        "[[tenants]]\nname = \"c\"\nworkload = \"cpu.synthetic\"\n[[tenants]]\nname = \"n\"\nworkload = \"interactive.notebook\"\nparams = { device = \"cpu\" }";
    const GPU_TENANT: &str = "[[tenants]]\nname = \"p\"\nworkload = \"probe.compute\"";

    #[test]
    fn cpu_tenants_run_anywhere() {
        check(&scenario(TS, CPU_TENANT), &no_gpu()).unwrap();
    }

    #[test]
    fn gpu_tenants_on_a_host_without_a_gpu_are_refused_with_the_reason() {
        let err = check(&scenario(TS, GPU_TENANT), &no_gpu()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checking this host for scenario `s`: tenant(s) `p` run on the GPU, but this host has no NVIDIA GPU (NVML could not be loaded); run on a GPU host, or use CPU workloads (`gpushare run smoke-cpu`)"
        );
    }

    #[test]
    fn torch_workloads_need_the_feature() {
        let report = no_gpu();
        let text = "[[tenants]]\nname = \"t\"\nworkload = \"train.resnet50\"\nparams = { device = \"cpu\", tiny = true }";
        let result = check(&scenario(TS, text), &report);
        if cfg!(feature = "torch") {
            result.unwrap();
        } else {
            assert_eq!(
                result.unwrap_err().problems,
                vec![format!(
                    "tenant `t` (train.resnet50) cannot run with this build: {}",
                    match crate::workload::find("train.resnet50")
                        .unwrap()
                        .availability
                    {
                        Availability::Unavailable(reason) => reason,
                        Availability::Available => unreachable!(),
                    }
                )]
            );
        }
    }

    #[test]
    fn mps_needs_its_control_program() {
        let err = check(
            &scenario("[[modes]]\nmode = \"mps\"", CPU_TENANT),
            &no_gpu(),
        )
        .unwrap_err();
        assert_eq!(
            err.problems,
            vec!["mode `mps` needs nvidia-cuda-mps-control, which is not on PATH (it comes with the NVIDIA driver's compute utilities; GPUSHARE_MPS_CONTROL names another)".to_string()]
        );
    }

    #[test]
    fn mig_needs_it_enabled_and_an_instance_of_each_profile() {
        let mig = "[[modes]]\nmode = \"mig\"\nprofile = [\"3g.71gb\", \"1g.18gb\"]";
        let off = h200(MigState::Disabled {
            pending_enabled: false,
        });
        let err = check(&scenario(mig, GPU_TENANT), &off).unwrap_err();
        assert_eq!(
            err.problems,
            vec!["mode `mig` cannot run here: needs MIG enabled with instances (GPU 0: MIG disabled (pending: disabled)); enable MIG and create instances with `gpu-configs/setup_mig.sh`".to_string()]
        );
        let on = h200(MigState::Enabled {
            pending_enabled: true,
            instances: vec![MigInstance {
                index: 0,
                uuid: "MIG-0".into(),
                profile: "3g.71gb".into(),
                memory_total_bytes: None,
            }],
        });
        let err = check(&scenario(mig, GPU_TENANT), &on).unwrap_err();
        assert_eq!(
            err.problems,
            vec!["mode `mig` asks for profile(s) 1g.18gb, but this host's MIG instances are 3g.71gb; create them with `gpu-configs/setup_mig.sh --profiles 1g.18gb`".to_string()]
        );
        check(
            &scenario(
                "[[modes]]\nmode = \"mig\"\nprofile = \"3g.71gb\"",
                GPU_TENANT,
            ),
            &on,
        )
        .unwrap();
    }
}
