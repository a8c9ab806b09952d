//! enable_mps.sh and disable_mps.sh: starting the MPS control daemon with its limits,
//! stopping it and waiting for its processes.

use std::fs;

use super::{assert_refused, lines, FakeHost};

#[test]
fn enable_mps_starts_the_daemon_then_sets_the_limits() {
    let host = FakeHost::new();
    let (pipe, logs) = (host.path("pipe"), host.path("logs"));
    let args = [
        "--pipe-dir",
        &pipe,
        "--log-dir",
        &logs,
        "--active-thread-percentage",
        "50",
        "--pinned-mem-limit",
        "8G",
        "--exclusive-process",
    ];
    let outcome = host.run("enable_mps.sh", &args);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-smi -i 0 -c EXCLUSIVE_PROCESS",
            "nvidia-cuda-mps-control -d (CUDA_VISIBLE_DEVICES=0 CUDA_DEVICE_ORDER=PCI_BUS_ID \
             CUDA_MPS_PIPE_DIRECTORY=$T/pipe CUDA_MPS_LOG_DIRECTORY=$T/logs)",
            "nvidia-cuda-mps-control < set_default_active_thread_percentage 50 (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
            "nvidia-cuda-mps-control < set_default_device_pinned_mem_limit 0 8G (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
        ]
    );
    assert!(host.exists("logs"), "the log directory is created");
    assert!(
        outcome
            .stderr
            .contains("clients must run with CUDA_MPS_PIPE_DIRECTORY=$T/pipe"),
        "{outcome:#?}"
    );
}

#[test]
fn enable_mps_on_all_gpus_sets_the_memory_limit_of_each() {
    let host = FakeHost::new()
        .with("STUB_GPU_COUNT", "2")
        .with("CUDA_VISIBLE_DEVICES", "1");
    let pipe = host.path("pipe");
    let args = [
        "--gpu",
        "all",
        "--pipe-dir",
        &pipe,
        "--log-dir",
        &pipe,
        "--pinned-mem-limit",
        "512M",
    ];
    let outcome = host.run("enable_mps.sh", &args);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-cuda-mps-control -d (CUDA_VISIBLE_DEVICES=unset CUDA_DEVICE_ORDER=PCI_BUS_ID \
             CUDA_MPS_PIPE_DIRECTORY=$T/pipe CUDA_MPS_LOG_DIRECTORY=$T/pipe)",
            "nvidia-cuda-mps-control < set_default_device_pinned_mem_limit 0 512M (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
            "nvidia-cuda-mps-control < set_default_device_pinned_mem_limit 1 512M (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
        ]
    );
}

#[test]
fn enable_mps_dry_run_prints_every_command_and_creates_nothing() {
    let host = FakeHost::new().not_root();
    let (pipe, logs) = (host.path("pipe"), host.path("logs"));
    let args = [
        "--gpu",
        "0",
        "--pipe-dir",
        &pipe,
        "--log-dir",
        &logs,
        "--active-thread-percentage",
        "25",
        "--exclusive-process",
        "--dry-run",
    ];
    let outcome = host.run("enable_mps.sh", &args);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        lines(&outcome.stdout),
        [
            "$T/bin/nvidia-smi -i 0 -c EXCLUSIVE_PROCESS",
            "mkdir -p $T/pipe $T/logs",
            "env CUDA_VISIBLE_DEVICES=0 CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_MPS_PIPE_DIRECTORY=$T/pipe \
             CUDA_MPS_LOG_DIRECTORY=$T/logs $T/bin/nvidia-cuda-mps-control -d",
            "echo 'set_default_active_thread_percentage 25' | env CUDA_MPS_PIPE_DIRECTORY=$T/pipe \
             $T/bin/nvidia-cuda-mps-control",
        ]
    );
    assert!(host.changes().is_empty(), "{:?}", host.changes());
    assert!(!host.exists("pipe") && !host.exists("logs"));
}

#[test]
fn enable_mps_refuses_when_a_daemon_already_serves_the_pipe_dir() {
    let host = FakeHost::new();
    host.mps_daemon_running("pipe", 4242, &[]);
    let pipe = host.path("pipe");
    let outcome = host.run("enable_mps.sh", &["--pipe-dir", &pipe]);
    assert_refused(
        &outcome,
        9,
        "an MPS control daemon (pid 4242) already serves $T/pipe",
    );
    assert!(host.changes().is_empty());

    // The dry run shows what would happen once the daemon is stopped.
    let dry = host.run("enable_mps.sh", &["--pipe-dir", &pipe, "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert!(
        dry.stderr
            .contains("(a real run would stop here with exit code 9)"),
        "{dry:#?}"
    );
    assert!(
        dry.stdout.contains("nvidia-cuda-mps-control -d"),
        "{dry:#?}"
    );
}

#[test]
fn enable_mps_ignores_a_stale_pid_file() {
    let host = FakeHost::new();
    host.mps_daemon_running("pipe", 4242, &[]);
    fs::remove_file(host.path("state/mps_control_pids")).expect("the daemon is gone");
    let pipe = host.path("pipe");
    let outcome = host.run("enable_mps.sh", &["--pipe-dir", &pipe, "--log-dir", &pipe]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(host.changes().len(), 1, "{:?}", host.changes());
    assert!(host.changes()[0].starts_with("nvidia-cuda-mps-control -d"));
}

#[test]
fn enable_mps_rejects_bad_values() {
    let host = FakeHost::new();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--active-thread-percentage", "0"],
            "--active-thread-percentage takes a whole number from 1 to 100, not '0'",
        ),
        (&["--active-thread-percentage", "101"], "not '101'"),
        (
            &["--pinned-mem-limit", "8GB"],
            "--pinned-mem-limit takes a size like 8G or 512M, not '8GB'",
        ),
        (
            &["--pipe-dir", "relative/dir"],
            "--pipe-dir and --log-dir take absolute paths",
        ),
        (
            &["--timeout", "soon"],
            "--timeout takes whole seconds, not 'soon'",
        ),
        (&["--gpu"], "option --gpu needs a value"),
    ];
    for (args, message) in cases {
        assert_refused(&host.run("enable_mps.sh", args), 2, message);
    }
    assert!(host.calls().is_empty());
}

#[test]
fn enable_mps_reports_a_missing_mps_control() {
    let host = FakeHost::new().with("GPUSHARE_MPS_CONTROL", "/nonexistent/mps");
    let outcome = host.run("enable_mps.sh", &["--pipe-dir", "/unused"]);
    assert_refused(
        &outcome,
        4,
        "nvidia-cuda-mps-control not found at /nonexistent/mps",
    );
}

#[test]
fn enable_mps_times_out_when_the_daemon_never_comes_up() {
    let host = FakeHost::new().with("STUB_MPS_NO_SOCKET", "1");
    let pipe = host.path("pipe");
    let outcome = host.run(
        "enable_mps.sh",
        &[
            "--pipe-dir",
            &pipe,
            "--log-dir",
            &pipe,
            "--timeout",
            "1",
            "--active-thread-percentage",
            "50",
        ],
    );
    assert_refused(
        &outcome,
        10,
        "the MPS control daemon did not create $T/pipe/control within 1 s",
    );
    assert_eq!(
        host.changes().len(),
        1,
        "no limits are sent to a daemon that is not up"
    );
}

#[test]
fn disable_mps_quits_and_waits_for_daemon_and_servers() {
    // The stub's daemon and server take half a second to exit after `quit`.
    let host = FakeHost::new().with("STUB_MPS_EXIT_DELAY_S", "0.5");
    host.mps_daemon_running("pipe", 4242, &[77, 78]);
    let pipe = host.path("pipe");
    let outcome = host.run(
        "disable_mps.sh",
        &["--pipe-dir", &pipe, "--restore-compute-mode"],
    );
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.calls(),
        [
            "nvidia-smi --query-gpu=index --format=csv,noheader",
            "nvidia-cuda-mps-control < get_server_list (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
            "nvidia-cuda-mps-control < quit (CUDA_MPS_PIPE_DIRECTORY=$T/pipe)",
            "nvidia-smi -i 0 -c DEFAULT",
        ]
    );
    assert!(
        outcome
            .stderr
            .contains("(pid 4242) and its 2 server(s) have exited"),
        "{outcome:#?}"
    );
    assert!(
        !host.exists("state/mps_control_pids"),
        "the script returned before the daemon exited"
    );
}

#[test]
fn disable_mps_times_out_when_the_processes_stay() {
    let host = FakeHost::new().with("STUB_MPS_QUIT_IGNORED", "1");
    host.mps_daemon_running("pipe", 4242, &[77]);
    let pipe = host.path("pipe");
    let outcome = host.run("disable_mps.sh", &["--pipe-dir", &pipe, "--timeout", "1"]);
    assert_refused(
        &outcome,
        10,
        "MPS process(es) 4242 77 still running after 1 s",
    );
}

#[test]
fn disable_mps_with_no_daemon_does_nothing() {
    let host = FakeHost::new();
    let pipe = host.path("pipe");
    let outcome = host.run("disable_mps.sh", &["--pipe-dir", &pipe]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("no MPS control daemon is running; nothing to stop"),
        "{outcome:#?}"
    );
    assert!(host.calls().is_empty());

    // A daemon on another pipe directory is named, not stopped.
    host.mps_daemon_running("other", 5151, &[]);
    let outcome = host.run("disable_mps.sh", &["--pipe-dir", &pipe]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("other daemon(s) run as pid(s) 5151"),
        "{outcome:#?}"
    );
    assert!(host.calls().is_empty());
}

#[test]
fn disable_mps_dry_run_prints_quit_and_leaves_the_daemon() {
    let host = FakeHost::new().not_root();
    host.mps_daemon_running("pipe", 4242, &[]);
    let pipe = host.path("pipe");
    let outcome = host.run(
        "disable_mps.sh",
        &["--pipe-dir", &pipe, "--restore-compute-mode", "--dry-run"],
    );
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        lines(&outcome.stdout),
        [
            "echo quit | env CUDA_MPS_PIPE_DIRECTORY=$T/pipe $T/bin/nvidia-cuda-mps-control",
            "$T/bin/nvidia-smi -i 0 -c DEFAULT",
        ]
    );
    assert_eq!(
        host.calls(),
        ["nvidia-smi --query-gpu=index --format=csv,noheader"],
        "a dry run sends the daemon nothing"
    );
    assert!(host.exists("state/mps_control_pids"));
}

#[test]
fn disable_mps_rejects_gpu_without_restore() {
    let host = FakeHost::new();
    let outcome = host.run("disable_mps.sh", &["--gpu", "0"]);
    assert_refused(
        &outcome,
        2,
        "--gpu only applies with --restore-compute-mode",
    );
}
