//! The MPS guard's whole lifecycle on a machine without a GPU, against a stub
//! `nvidia-cuda-mps-control` (tests/fixtures/mps-control-stub.sh) that daemonizes, keeps a
//! fake server, and answers control commands. The same lifecycle against NVIDIA's real
//! daemon is in `gpu_sharing` (GPU machine only).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gpushare::sharing::{
    self, ModeContext, ModeGuard, ModeSetting, MpsConfig, MpsGuard, MpsSetting, SharingError,
    TenantSharing, WorkerSharing,
};
use tempfile::TempDir;

const STUB: &str = include_str!("../fixtures/mps-control-stub.sh");

/// Pids of running processes whose `argv[0]` file name is `name` (zombies excluded).
/// Written apart from the library's own scan so that the tests check it.
pub fn processes_named(name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next();
        if state == Some('Z') {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let arg0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let arg0 = String::from_utf8_lossy(arg0);
        if Path::new(arg0.as_ref())
            .file_name()
            .is_some_and(|f| f == name)
        {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `timeout` for no process named `name` to remain.
pub fn wait_none_named(name: &str, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_named(name);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private copy of the stub under a unique name, and a temp root for the guard's dirs.
struct Stub {
    bin: TempDir,
    temp_root: TempDir,
    control_name: String,
    server_name: String,
}

impl Stub {
    fn new() -> Stub {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "gs{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let bin = tempfile::Builder::new()
            .prefix("gs-stub-")
            .tempdir()
            .unwrap();
        let control_name = format!("{unique}-control");
        let path = bin.path().join(&control_name);
        std::fs::write(&path, STUB).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Stub {
            bin,
            temp_root: tempfile::Builder::new()
                .prefix("gs-root-")
                .tempdir()
                .unwrap(),
            server_name: format!("{unique}-server"),
            control_name,
        }
    }

    fn control_path(&self) -> PathBuf {
        self.bin.path().join(&self.control_name)
    }

    fn config(&self) -> MpsConfig {
        MpsConfig {
            control_binary: self.control_path(),
            server_name: self.server_name.clone(),
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            temp_root: Some(self.temp_root.path().to_path_buf()),
        }
    }

    fn context(&self, workers: Vec<WorkerSharing>) -> ModeContext {
        ModeContext {
            gpu_index: 0,
            run_id: "mps/cpu.synthetic/2t".into(),
            workers,
            mps: self.config(),
        }
    }

    fn ignore_quit(&self) {
        std::fs::write(self.bin.path().join("ignore-quit"), "").unwrap();
    }

    fn running(&self) -> Vec<u32> {
        let mut pids = processes_named(&self.control_name);
        pids.extend(processes_named(&self.server_name));
        pids
    }

    fn assert_nothing_left(&self) {
        assert_eq!(
            wait_none_named(&self.control_name, Duration::ZERO),
            Vec::<u32>::new()
        );
        assert_eq!(
            wait_none_named(&self.server_name, Duration::ZERO),
            Vec::<u32>::new()
        );
        let left: Vec<_> = std::fs::read_dir(self.temp_root.path()).unwrap().collect();
        assert!(left.is_empty(), "directories left behind: {left:?}");
    }
}

impl Drop for Stub {
    /// Whatever a failing test left running is killed, so one failure does not leave
    /// daemons behind for the next run.
    fn drop(&mut self) {
        for pid in self.running() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn worker(label: &str, sharing: TenantSharing) -> WorkerSharing {
    WorkerSharing {
        label: label.into(),
        sharing,
    }
}

fn env_value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn mps_stub_lifecycle_starts_gives_env_and_stops_cleanly() {
    let stub = Stub::new();
    let workers = vec![
        worker("train#0", TenantSharing::default()),
        worker(
            "infer#0",
            TenantSharing {
                mps_active_thread_percentage: Some(25),
                mps_pinned_memory_limit_mib: Some(512),
                mig_profile: None,
            },
        ),
    ];
    let setting = ModeSetting::Mps(MpsSetting {
        active_thread_percentage: Some(50),
        pinned_memory_limit_mib: Some(1024),
    });
    let guard = sharing::enter(&setting, &stub.context(workers)).unwrap();

    assert_eq!(processes_named(&stub.control_name).len(), 1);
    assert_eq!(processes_named(&stub.server_name).len(), 1);

    // A worker without overrides gets the mode's values, explicitly.
    let train = guard.tenant_env(0).unwrap();
    let pipe_dir = PathBuf::from(env_value(&train, "CUDA_MPS_PIPE_DIRECTORY").unwrap());
    let log_dir = PathBuf::from(env_value(&train, "CUDA_MPS_LOG_DIRECTORY").unwrap());
    assert_eq!(
        env_value(&train, "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
        Some("50")
    );
    assert_eq!(
        env_value(&train, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"),
        Some("0=1024M")
    );
    assert_eq!(train.len(), 4, "{train:?}");
    assert!(pipe_dir.starts_with(stub.temp_root.path()));
    for dir in [&pipe_dir, &log_dir] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let infer = guard.tenant_env(1).unwrap();
    assert_eq!(
        env_value(&infer, "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
        Some("25")
    );
    assert_eq!(
        env_value(&infer, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"),
        Some("0=512M")
    );
    assert!(matches!(
        guard.tenant_env(2),
        Err(SharingError::NoSuchWorker {
            worker_idx: 2,
            n_workers: 2
        })
    ));

    let notes = guard.record().notes;
    assert!(
        notes
            .iter()
            .any(|n| n == "MPS default active thread percentage set to 50 (daemon answers `50`)"),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains(
            "pinned device memory limit of device 0 set to 1024M (daemon answers `1024M`)"
        )),
        "{notes:?}"
    );
    let control_log = std::fs::read_to_string(log_dir.join("control.log")).unwrap();
    assert!(control_log.contains("command: set_default_active_thread_percentage 50"));
    assert!(control_log.contains("command: set_default_device_pinned_mem_limit 0 1024M"));
    let context = guard.failure_context().unwrap();
    assert!(
        context.contains("MPS control.log (last lines):\n[stub] control daemon started"),
        "{context}"
    );
    assert!(
        context.contains("MPS server.log (last lines):\n[stub] server"),
        "{context}"
    );

    // The stub's server outlives `quit` by a second: exit must wait for it.
    guard.exit().unwrap();
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_raises_the_daemon_default_for_a_worker_that_asks_for_more() {
    let stub = Stub::new();
    let workers = vec![
        worker("train#0", TenantSharing::default()),
        worker(
            "serve#0",
            TenantSharing {
                mps_active_thread_percentage: Some(100),
                ..TenantSharing::default()
            },
        ),
    ];
    let setting = MpsSetting {
        active_thread_percentage: Some(25),
        pinned_memory_limit_mib: None,
    };
    let guard = MpsGuard::enter(&setting, &stub.context(workers)).unwrap();
    // A client can only lower the daemon's default, so the default is the highest asked
    // for and the others are lowered through their environment.
    let notes = guard.record().notes;
    assert!(
        notes.iter().any(|n| n
            == "MPS default active thread percentage set to 100 (daemon answers `100`), the \
                highest a worker asked for; the mode's 25% goes to the other workers through \
                their environment"),
        "{notes:?}"
    );
    let train = guard.tenant_env(0).unwrap();
    assert_eq!(
        env_value(&train, "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
        Some("25")
    );
    assert_eq!(env_value(&train, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"), None);
    let serve = guard.tenant_env(1).unwrap();
    assert_eq!(
        env_value(&serve, "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
        Some("100")
    );
    let boxed: Box<dyn ModeGuard> = Box::new(guard);
    boxed.exit().unwrap();
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_refuses_a_foreign_daemon() {
    let stub = Stub::new();
    let foreign = tempfile::Builder::new()
        .prefix("gs-foreign-")
        .tempdir()
        .unwrap();
    let dir_env = [
        ("CUDA_MPS_PIPE_DIRECTORY", foreign.path().join("pipe")),
        ("CUDA_MPS_LOG_DIRECTORY", foreign.path().join("log")),
    ];
    let started = Command::new(stub.control_path())
        .arg("-d")
        .envs(dir_env.clone())
        .status()
        .unwrap();
    assert!(started.success());
    let foreign_pids = processes_named(&stub.control_name);
    assert_eq!(foreign_pids.len(), 1);

    let error = MpsGuard::enter(&MpsSetting::default(), &stub.context(Vec::new()))
        .err()
        .expect("entering MPS with a foreign daemon running must fail");
    let pipe = foreign.path().join("pipe").display().to_string();
    match &error {
        SharingError::ForeignMpsDaemon { pid, pipe_dir, .. } => {
            assert_eq!(*pid, foreign_pids[0]);
            assert_eq!(*pipe_dir, pipe);
        }
        other => panic!("unexpected error: {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "stop it with `CUDA_MPS_PIPE_DIRECTORY={pipe} sh -c 'echo quit | {}'` or \
             `gpu-configs/disable_mps.sh`",
            stub.control_name
        )),
        "{message}"
    );

    // What the message says to do works, and the refusal started nothing of its own.
    let mut quit = Command::new(stub.control_path())
        .envs(dir_env)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    quit.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    assert!(quit.wait().unwrap().success());
    assert_eq!(
        wait_none_named(&stub.control_name, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    assert_eq!(
        wait_none_named(&stub.server_name, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_kills_a_daemon_that_ignores_quit() {
    let stub = Stub::new();
    stub.ignore_quit();
    let config = MpsConfig {
        stop_timeout: Duration::from_secs(1),
        ..stub.config()
    };
    let context = ModeContext {
        mps: config,
        ..stub.context(Vec::new())
    };
    let guard = MpsGuard::enter(&MpsSetting::default(), &context).unwrap();
    let daemon_pid = guard.daemon_pid().unwrap();
    let server_pid = guard.server_pids().unwrap()[0];

    let started = Instant::now();
    let boxed: Box<dyn ModeGuard> = Box::new(guard);
    let error = boxed.exit().unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(matches!(
        error,
        SharingError::StoppingMpsDaemon { timeout_s: 1, .. }
    ));
    let message = error.to_string();
    assert!(
        message.contains("still ran 1 s after `quit` and were killed"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{daemon_pid} ({})", stub.control_name)),
        "{message}"
    );
    assert!(
        message.contains(&format!("{server_pid} ({})", stub.server_name)),
        "{message}"
    );
    assert!(message.contains("[stub] command: quit"), "{message}");
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_drop_tears_down() {
    let stub = Stub::new();
    let guard = MpsGuard::enter(&MpsSetting::default(), &stub.context(Vec::new())).unwrap();
    assert_eq!(stub.running().len(), 2);
    drop(guard);
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_panic_unwinding_tears_down() {
    let stub = Stub::new();
    let seen = Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let _guard = sharing::enter(
            &ModeSetting::Mps(MpsSetting::default()),
            &stub.context(Vec::new()),
        )
        .unwrap();
        seen.lock().unwrap().extend(stub.running());
        panic!("a worker failed mid-run");
    });
    assert!(outcome.is_err());
    assert_eq!(seen.lock().unwrap().len(), 2);
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_start_failure_is_reported_and_cleaned_up() {
    let stub = Stub::new();
    let failing = stub.bin.path().join("failing-control");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'cannot start: no GPU' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let context = ModeContext {
        mps: MpsConfig {
            control_binary: failing.clone(),
            ..stub.config()
        },
        ..stub.context(Vec::new())
    };
    let error = MpsGuard::enter(&MpsSetting::default(), &context)
        .err()
        .unwrap();
    assert!(
        matches!(error, SharingError::StartingMpsDaemon { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "starting the MPS control daemon `{} -d` in ",
            failing.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(": exit status: 3; it said: cannot start: no GPU"),
        "{message}"
    );
    stub.assert_nothing_left();
}

#[test]
fn mps_stub_missing_binary_says_what_it_ran() {
    let stub = Stub::new();
    let context = ModeContext {
        mps: MpsConfig {
            control_binary: PathBuf::from("/nonexistent/nvidia-cuda-mps-control"),
            ..stub.config()
        },
        ..stub.context(Vec::new())
    };
    let error = MpsGuard::enter(&MpsSetting::default(), &context)
        .err()
        .unwrap();
    assert!(matches!(error, SharingError::SpawningMpsControl { .. }));
    assert_eq!(
        error.to_string(),
        "running `/nonexistent/nvidia-cuda-mps-control` (is it installed and on PATH?)"
    );
    stub.assert_nothing_left();
}

/// SIGKILL gives the runner no chance to tear down, and the MPS daemon forks away from
/// it: the janitor started next to the daemon stops it and removes its directories.
#[test]
fn a_killed_runner_leaves_no_mps_daemon_behind() {
    let stub = Stub::new();
    let dir = tempfile::tempdir().unwrap();
    let text = crate::common::quick_scenario("")
        // The exclusive baselines (2 x 3 s) come first; the MPS run is killed early on.
        .replace("duration_s = 0.6", "duration_s = 3")
        .replace(r#"mode = "time-slicing""#, r#"mode = "mps""#);
    let scenario = crate::common::write_scenario(dir.path(), "s.toml", &text);
    let mut runner = crate::common::gpushare()
        .args(["run", "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .env("GPUSHARE_MPS_CONTROL", stub.control_path())
        .env("TMPDIR", stub.temp_root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_named(&stub.server_name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = !processes_named(&stub.server_name).is_empty();
    runner.kill().unwrap();
    let status = runner.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut runner.stderr.take().unwrap(), &mut said).unwrap();
    assert!(
        started,
        "no MPS server started ({status}); the runner said:\n{said}"
    );

    // The janitor's stop timeout is the guard's default (10 s); the stub quits in ~1 s.
    let left = wait_none_named(&stub.control_name, Duration::from_secs(15));
    assert_eq!(left, Vec::<u32>::new(), "control daemon left running");
    let left = wait_none_named(&stub.server_name, Duration::from_secs(5));
    assert_eq!(left, Vec::<u32>::new(), "server left running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(stub.temp_root.path())
        .unwrap()
        .next()
        .is_some()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stub.assert_nothing_left();
}
