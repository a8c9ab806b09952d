//! Sharing modes on a real GPU: NVIDIA's MPS daemon, the MIG check, `doctor`. Run on the
//! GPU machine only (`scripts/gpu-check-sharing.sh`), one test at a time: they start and
//! stop the host's one MPS daemon.
//!
//! A CUDA client must pick up the MPS variables before the driver initializes, so the
//! client runs in a child process: this test binary again, running only
//! `gpu_client_probe`, which reports what the driver gave it on one stdout line.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::CudaContext;
use gpushare::doctor;
use gpushare::sharing::{
    self, MigGuard, MigSetting, ModeContext, ModeGuard, ModeSetting, MpsConfig, MpsGuard,
    MpsSetting, SharingError, TenantSharing, WorkerSharing,
};

use crate::sharing_mps::{processes_named, wait_none_named};

const REPORT_PREFIX: &str = "GPUSHARE_CLIENT_REPORT ";
const CONTROL: &str = "nvidia-cuda-mps-control";
const SERVER: &str = "nvidia-cuda-mps-server";

/// The CUDA client. Alone it checks that a context opens, the device has SMs, and a
/// 64 MiB allocation works. Started by [`run_client`] it allocates what it is asked to,
/// reports instead of asserting on the allocation, and may hold its context until told.
#[test]
fn gpu_client_probe() {
    let asked_mib = std::env::var("GPUSHARE_CLIENT_ALLOC_MIB").ok().map(|text| {
        text.parse::<usize>()
            .expect("GPUSHARE_CLIENT_ALLOC_MIB is a number")
    });
    let alloc_mib = asked_mib.unwrap_or(64);
    let ctx = CudaContext::new(0).expect("creating a CUDA context on device 0");
    let sm_count = ctx
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .expect("reading the SM count");
    let stream = ctx.default_stream();
    let alloc = stream
        .alloc_zeros::<u8>(alloc_mib << 20)
        .and_then(|buffer| stream.synchronize().map(|()| buffer));
    let alloc_error = alloc.as_ref().err().map(|error| format!("{error:?}"));
    println!(
        "{REPORT_PREFIX}{}",
        serde_json::json!({
            "sm_count": sm_count,
            "alloc_mib": alloc_mib,
            "alloc_error": alloc_error,
        })
    );
    if std::env::var_os("GPUSHARE_CLIENT_HOLD").is_some() {
        std::io::stdout().flush().unwrap();
        // Holds the context (and so the MPS server) until the parent closes stdin.
        let mut rest = String::new();
        std::io::stdin().read_to_string(&mut rest).unwrap();
    }
    drop(alloc);
    assert!(sm_count > 0);
    if asked_mib.is_none() {
        assert_eq!(alloc_error, None);
    }
}

#[derive(Debug)]
struct ClientReport {
    sm_count: i64,
    alloc_error: Option<String>,
}

/// Runs [`gpu_client_probe`] in a child with `env`; `while_held` runs while the child
/// holds its context.
fn run_client(
    env: &[(String, String)],
    alloc_mib: usize,
    while_held: impl FnOnce(),
) -> ClientReport {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "gpu_sharing::gpu_client_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("GPUSHARE_CLIENT_ALLOC_MIB", alloc_mib.to_string())
        .env("GPUSHARE_CLIENT_HOLD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress on stderr, so a hang shows where it happened.
    let (pid, started) = (child.id(), std::time::Instant::now());
    let trace = |what: &str| eprintln!("[client {pid} +{:.2?}] {what}", started.elapsed());
    trace("spawned");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = None;
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        // With one test thread libtest prints `test <name> ... ` without a newline before
        // running the test, so the report may come after that on the same line.
        if let Some(json) = line.split_once(REPORT_PREFIX).map(|(_, json)| json.trim()) {
            report = Some(serde_json::from_str::<serde_json::Value>(json).unwrap());
            break;
        }
        seen.push_str(&line);
        line.clear();
    }
    let report = report.unwrap_or_else(|| panic!("the client sent no report; it printed:\n{seen}"));
    trace("reported, holding its context");
    while_held();
    drop(child.stdin.take());
    trace("released");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    trace("stdout closed");
    let status = child.wait().unwrap();
    trace("exited");
    assert!(
        status.success(),
        "the client failed ({status}):\n{seen}{rest}"
    );
    ClientReport {
        sm_count: report["sm_count"].as_i64().unwrap(),
        alloc_error: report["alloc_error"].as_str().map(str::to_string),
    }
}

fn workers(overrides: Vec<TenantSharing>) -> Vec<WorkerSharing> {
    overrides
        .into_iter()
        .enumerate()
        .map(|(idx, sharing)| WorkerSharing {
            label: format!("client#{idx}"),
            sharing,
        })
        .collect()
}

fn context(overrides: Vec<TenantSharing>) -> ModeContext {
    ModeContext {
        gpu_index: 0,
        run_id: "gpu-test".into(),
        workers: workers(overrides),
        mps: MpsConfig::default(),
    }
}

fn assert_no_mps_process_left() {
    assert_eq!(
        processes_named(CONTROL),
        Vec::<u32>::new(),
        "{CONTROL} left running"
    );
    assert_eq!(
        processes_named(SERVER),
        Vec::<u32>::new(),
        "{SERVER} left running"
    );
}

#[test]
fn gpu_mps_lifecycle_serves_a_client_and_leaves_nothing() {
    assert_no_mps_process_left();
    let alone = run_client(&[], 64, || {});
    let guard = sharing::enter(
        &ModeSetting::Mps(MpsSetting::default()),
        &context(vec![TenantSharing::default()]),
    )
    .unwrap();
    let env = guard.tenant_env(0).unwrap();
    let mut servers = Vec::new();
    let under_mps = run_client(&env, 64, || {
        servers = processes_named(SERVER);
    });
    assert_eq!(under_mps.alloc_error, None);
    assert_eq!(under_mps.sm_count, alone.sm_count, "no limit was asked for");
    assert_eq!(
        servers.len(),
        1,
        "one MPS server serves the client: {servers:?}"
    );
    println!("notes: {:#?}", guard.record().notes);
    guard.exit().unwrap();
    assert_no_mps_process_left();
}

#[test]
fn gpu_mps_server_list_names_the_server() {
    let guard = MpsGuard::enter(
        &MpsSetting::default(),
        &context(vec![TenantSharing::default()]),
    )
    .unwrap();
    let env = guard.tenant_env(0).unwrap();
    let mut listed = Vec::new();
    run_client(&env, 64, || {
        listed = guard.server_pids().unwrap();
    });
    assert_eq!(listed.len(), 1, "get_server_list: {listed:?}");
    assert_eq!(processes_named(SERVER), listed);
    Box::new(guard).exit().unwrap();
    assert_no_mps_process_left();
}

#[test]
fn gpu_mps_active_thread_percentage_limits_sms() {
    let alone = run_client(&[], 64, || {});
    // The daemon's default becomes 50 (a client can only lower it); worker 0 is lowered
    // to the mode's 25 through its environment.
    let quarter_by_default = MpsSetting {
        active_thread_percentage: Some(25),
        pinned_memory_limit_mib: None,
    };
    let half_for_worker_1 = TenantSharing {
        mps_active_thread_percentage: Some(50),
        ..TenantSharing::default()
    };
    let guard = MpsGuard::enter(
        &quarter_by_default,
        &context(vec![TenantSharing::default(), half_for_worker_1]),
    )
    .unwrap();
    let quarter = run_client(&guard.tenant_env(0).unwrap(), 64, || {});
    let half = run_client(&guard.tenant_env(1).unwrap(), 64, || {});
    println!(
        "SMs: alone {}, 25% {}, 50% {}",
        alone.sm_count, quarter.sm_count, half.sm_count
    );
    println!("notes: {:#?}", guard.record().notes);
    Box::new(guard).exit().unwrap();
    assert!(quarter.sm_count < alone.sm_count);
    // MPS rounds to whole TPCs, so allow a little above a quarter (32 of 132 seen).
    assert!(
        quarter.sm_count <= alone.sm_count / 4 + 2,
        "{quarter:?} of {alone:?}"
    );
    assert!(half.sm_count > quarter.sm_count && half.sm_count < alone.sm_count);
    assert_no_mps_process_left();
}

/// The pinned limit for these checks. A client's CUDA context counts against it too: on
/// the H200 (driver 580, CUDA 13) a context could not even be created under a 512 MiB
/// limit (CUDA_ERROR_OUT_OF_MEMORY in cuCtxCreate), so the limit leaves room for one.
const PINNED_LIMIT_MIB: u64 = 4096;

#[test]
fn gpu_mps_pinned_memory_limit_fails_an_oversized_allocation() {
    let limited_by_default = MpsSetting {
        active_thread_percentage: None,
        pinned_memory_limit_mib: Some(PINNED_LIMIT_MIB),
    };
    let guard = MpsGuard::enter(
        &limited_by_default,
        &context(vec![TenantSharing::default()]),
    )
    .unwrap();
    let env = guard.tenant_env(0).unwrap();
    let small = run_client(&env, 64, || {});
    let large = run_client(&env, 2 * PINNED_LIMIT_MIB as usize, || {});
    Box::new(guard).exit().unwrap();
    assert_eq!(small.alloc_error, None, "64 MiB fits under the limit");
    assert!(
        large.alloc_error.is_some(),
        "twice the limit must not fit under it"
    );

    let limited_tenant = TenantSharing {
        mps_pinned_memory_limit_mib: Some(PINNED_LIMIT_MIB),
        ..TenantSharing::default()
    };
    let guard = MpsGuard::enter(&MpsSetting::default(), &context(vec![limited_tenant])).unwrap();
    let env = guard.tenant_env(0).unwrap();
    assert!(env.contains(&(
        "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT".into(),
        format!("0={PINNED_LIMIT_MIB}M")
    )));
    let large = run_client(&env, 2 * PINNED_LIMIT_MIB as usize, || {});
    Box::new(guard).exit().unwrap();
    assert!(
        large.alloc_error.is_some(),
        "the tenant's own limit applies too"
    );
    assert_no_mps_process_left();
}

/// A daemon gpushare did not start, in its own directories; quit and gone on drop.
struct ForeignDaemon {
    dirs: tempfile::TempDir,
}

impl ForeignDaemon {
    fn env(&self) -> [(&'static str, std::path::PathBuf); 2] {
        [
            ("CUDA_MPS_PIPE_DIRECTORY", self.dirs.path().join("pipe")),
            ("CUDA_MPS_LOG_DIRECTORY", self.dirs.path().join("log")),
        ]
    }
}

impl Drop for ForeignDaemon {
    fn drop(&mut self) {
        if let Ok(mut quit) = Command::new(CONTROL)
            .envs(self.env())
            .stdin(Stdio::piped())
            .spawn()
        {
            let _ = quit
                .stdin
                .take()
                .map(|mut stdin| stdin.write_all(b"quit\n"));
            let _ = quit.wait();
        }
        for pid in wait_none_named(CONTROL, Duration::from_secs(10)) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

#[test]
fn gpu_mps_refuses_a_foreign_daemon() {
    let foreign = ForeignDaemon {
        dirs: tempfile::Builder::new()
            .prefix("gs-foreign-")
            .tempdir()
            .unwrap(),
    };
    for (_, dir) in foreign.env() {
        std::fs::create_dir(&dir).unwrap();
    }
    let started = Command::new(CONTROL)
        .arg("-d")
        .envs(foreign.env())
        .status()
        .unwrap();
    assert!(started.success());
    let pids = wait_for_one(CONTROL);

    let error = MpsGuard::enter(&MpsSetting::default(), &context(Vec::new()))
        .err()
        .unwrap();
    match &error {
        SharingError::ForeignMpsDaemon { pid, pipe_dir, .. } => {
            assert_eq!(*pid, pids[0]);
            assert_eq!(
                *pipe_dir,
                foreign.dirs.path().join("pipe").display().to_string()
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    println!("{error}");
    drop(foreign);
    assert_no_mps_process_left();
}

fn wait_for_one(name: &str) -> Vec<u32> {
    for _ in 0..100 {
        let pids = processes_named(name);
        if !pids.is_empty() {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{name} did not start");
}

#[test]
fn gpu_mps_drop_after_a_panic_tears_down() {
    let servers_seen = std::sync::Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let guard = sharing::enter(
            &ModeSetting::Mps(MpsSetting::default()),
            &context(vec![TenantSharing::default()]),
        )
        .unwrap();
        run_client(&guard.tenant_env(0).unwrap(), 64, || {
            *servers_seen.lock().unwrap() = processes_named(SERVER);
        });
        panic!("a worker failed mid-run");
    });
    assert!(outcome.is_err());
    // The panic must be ours, after a server ran, not an earlier failure.
    assert_eq!(servers_seen.lock().unwrap().len(), 1);
    assert_no_mps_process_left();
}

/// The runner killed by SIGKILL mid-run, with two probe tenants connected to its MPS
/// server (about 30 s: the exclusive baselines come first): the janitor stops the daemon and the server, and no MPS process is left.
#[test]
fn gpu_mps_killed_runner_leaves_no_mps_process() {
    assert_no_mps_process_left();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("killed.toml");
    std::fs::write(
        &scenario,
        r#"
name = "killed"
description = "two probes under MPS; the runner is killed mid-run"

[run]
warmup_s = 0.5
duration_s = 8
repetitions = 1
min_samples = 10

[[modes]]
mode = "mps"

[[tenants]]
name = "compute"
workload = "probe.compute"
params = { step_ms = 2.0 }

[[tenants]]
name = "latency"
workload = "probe.latency"
params = { interval_us = 1000.0 }
"#,
    )
    .unwrap();
    // The GPU check script runs a copied binary; cargo's own otherwise.
    let binary =
        std::env::var_os("GPUSHARE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_gpushare").into());
    let mut runner = Command::new(binary)
        .args(["run", "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each tenant runs alone first (the baselines, 8 s each), then both under MPS; once
    // the server is up, give both clients time to connect.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while processes_named(SERVER).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let server_seen = processes_named(SERVER);
    std::thread::sleep(Duration::from_secs(3));
    runner.kill().unwrap();
    let status = runner.wait().unwrap();
    let mut said = String::new();
    runner
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    println!("runner ({status}) said:\n{said}");
    assert_eq!(server_seen.len(), 1, "an MPS server served the run");
    let killed_at = std::time::Instant::now();
    let control_left = wait_none_named(CONTROL, Duration::from_secs(30));
    let server_left = wait_none_named(SERVER, Duration::from_secs(15));
    println!(
        "FIGURE mps_gone_after_runner_killed_s {:.2}",
        killed_at.elapsed().as_secs_f64()
    );
    assert_eq!(control_left, Vec::<u32>::new(), "{CONTROL} left running");
    assert_eq!(server_left, Vec::<u32>::new(), "{SERVER} left running");
}

#[test]
fn gpu_mig_reports_disabled() {
    let setting = MigSetting {
        profile: "1g.18gb".into(),
    };
    let error = MigGuard::enter(&setting, &context(vec![TenantSharing::default()]))
        .err()
        .unwrap();
    assert!(
        matches!(error, SharingError::MigDisabled { gpu_index: 0, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("gpu-configs/setup_mig.sh"),
        "{error}"
    );
    let text = sharing::mig::describe_placement_on_host(
        0,
        &setting,
        &workers(vec![TenantSharing::default()]),
    );
    println!("{text}");
    assert!(text.contains("MIG is disabled on GPU 0"), "{text}");
}

#[test]
fn gpu_time_slicing_records_the_compute_mode() {
    let guard = sharing::enter(
        &ModeSetting::TimeSlicing,
        &context(vec![TenantSharing::default()]),
    )
    .unwrap();
    let notes = guard.record().notes;
    assert!(
        notes
            .iter()
            .any(|note| note.ends_with("compute mode: Default")),
        "{notes:?}"
    );
    guard.exit().unwrap();
}

#[test]
fn gpu_doctor_sees_the_gpu() {
    let report = doctor::diagnose();
    println!("{report}");
    let host = report
        .host_gpus
        .as_ref()
        .expect("NVML answers on the GPU machine");
    assert!(!host.gpus.is_empty());
    assert!(host.gpus[0].compute_mode.is_some());
    assert!(host.gpus[0].memory_total_bytes.unwrap_or(0) > 0);
    assert_eq!(report.gpu_problem, None);
    for mode in &report.modes {
        let expected = mode.mode != "mig";
        assert_eq!(mode.available, expected, "{}: {}", mode.mode, mode.reason);
    }
}
