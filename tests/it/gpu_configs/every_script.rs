//! Behaviour every gpu-configs script shares: help, option errors, root check, missing
//! nvidia-smi, GPU index check, failing commands.

use super::{assert_refused, FakeHost};

const SCRIPTS: [&str; 5] = [
    "setup_time_slicing.sh",
    "enable_mps.sh",
    "disable_mps.sh",
    "setup_mig.sh",
    "disable_mig.sh",
];

#[test]
fn every_script_documents_its_usage_and_exit_codes() {
    let host = FakeHost::new().not_root();
    for script in SCRIPTS {
        let outcome = host.run(script, &["--help"]);
        assert_eq!(outcome.code, 0, "{script}: {outcome:#?}");
        assert!(
            outcome.stdout.starts_with("Usage:"),
            "{script}: {outcome:#?}"
        );
        assert!(outcome.stdout.contains(script), "{script}: {outcome:#?}");
        assert!(outcome.stdout.contains("--dry-run"), "{script}");
        assert!(
            outcome.stdout.contains("11  change requested but pending"),
            "{script}"
        );
    }
    assert!(host.calls().is_empty());
}

#[test]
fn every_script_rejects_an_unknown_option() {
    let host = FakeHost::new();
    for script in SCRIPTS {
        let outcome = host.run(script, &["--frobnicate"]);
        assert_refused(
            &outcome,
            2,
            &format!("{script}: error: unknown option '--frobnicate'"),
        );
    }
    assert!(host.calls().is_empty());
}

#[test]
fn every_script_needs_root_unless_dry_run() {
    let host = FakeHost::new().not_root();
    let cases: [(&str, &[&str]); 5] = [
        ("setup_time_slicing.sh", &[]),
        ("enable_mps.sh", &[]),
        ("disable_mps.sh", &[]),
        ("setup_mig.sh", &["--layout", "full"]),
        ("disable_mig.sh", &[]),
    ];
    for (script, args) in cases {
        let outcome = host.run(script, args);
        assert_refused(
            &outcome,
            3,
            "needs root: run it with sudo, or add --dry-run",
        );
    }
    assert!(
        host.calls().is_empty(),
        "nothing may run before the root check"
    );
}

#[test]
fn every_script_reports_a_missing_nvidia_smi() {
    let host = FakeHost::new().with("GPUSHARE_NVIDIA_SMI", "/nonexistent/nvidia-smi");
    let cases: [(&str, &[&str]); 4] = [
        ("setup_time_slicing.sh", &[]),
        ("enable_mps.sh", &[]),
        ("setup_mig.sh", &["--layout", "full"]),
        ("disable_mig.sh", &[]),
    ];
    for (script, args) in cases {
        let outcome = host.run(script, args);
        assert_refused(
            &outcome,
            4,
            "nvidia-smi not found at /nonexistent/nvidia-smi (set by GPUSHARE_NVIDIA_SMI)",
        );
    }
}

#[test]
fn every_script_refuses_a_gpu_index_that_does_not_exist() {
    let host = FakeHost::new().with("STUB_GPU_COUNT", "2");
    let cases: [(&str, &[&str]); 4] = [
        ("setup_time_slicing.sh", &["--gpu", "2"]),
        ("enable_mps.sh", &["--gpu", "2", "--pipe-dir", "/unused"]),
        ("setup_mig.sh", &["--gpu", "2", "--layout", "full"]),
        ("disable_mig.sh", &["--gpu", "2"]),
    ];
    for (script, args) in cases {
        let outcome = host.run(script, args);
        assert_refused(&outcome, 5, "no GPU with index 2; nvidia-smi lists: 0 1");
    }
    assert!(host.changes().is_empty());
}

#[test]
fn a_failing_command_stops_the_script_with_its_status() {
    let host = FakeHost::new().with("STUB_FAIL_ARGS", "-i 0 -c DEFAULT");
    let outcome = host.run("setup_time_slicing.sh", &[]);
    assert_refused(
        &outcome,
        1,
        "command failed with exit status 3: $T/bin/nvidia-smi -i 0 -c DEFAULT",
    );
}
