//! setup_mig.sh and disable_mig.sh: model detection, layouts and profiles, MIG mode and
//! instances, and each refusal.

use super::{assert_refused, lines, FakeHost};

#[test]
fn setup_mig_enables_mig_and_creates_a_layout() {
    let host = FakeHost::new();
    let outcome = host.run("setup_mig.sh", &["--layout", "balanced"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-smi -i 0 -mig 1",
            "nvidia-smi mig -i 0 -cgi 3g.71gb,2g.35gb,1g.18gb,1g.18gb -C"
        ]
    );
    assert!(
        outcome
            .stderr
            .contains("GPU 0 (H200-141GB) now has MIG instances"),
        "{outcome:#?}"
    );
}

#[test]
fn setup_mig_creates_explicit_profiles_largest_first() {
    let host = FakeHost::new().with("STUB_MIG_MODE", "Enabled");
    let outcome = host.run("setup_mig.sh", &["--profiles", "1g.18gb,1g.35gb,4g.71gb"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    // MIG is already on: no `-mig 1`.
    assert_eq!(
        host.changes(),
        ["nvidia-smi mig -i 0 -cgi 4g.71gb,1g.35gb,1g.18gb -C"]
    );
}

#[test]
fn setup_mig_detects_each_known_model() {
    let cases = [
        ("NVIDIA A100-SXM4-40GB", "7g.40gb"),
        ("NVIDIA A100-PCIE-40GB", "7g.40gb"),
        ("NVIDIA A100-SXM4-80GB", "7g.80gb"),
        ("NVIDIA A100 80GB PCIe", "7g.80gb"),
        ("NVIDIA H100 80GB HBM3", "7g.80gb"),
        ("NVIDIA H100 PCIe", "7g.80gb"),
        ("NVIDIA H200", "7g.141gb"),
    ];
    for (name, full) in cases {
        let host = FakeHost::new().not_root().with("STUB_GPU_NAME", name);
        let outcome = host.run("setup_mig.sh", &["--layout", "full", "--dry-run"]);
        assert_eq!(outcome.code, 0, "{name}: {outcome:#?}");
        assert_eq!(
            lines(&outcome.stdout),
            [
                "$T/bin/nvidia-smi -i 0 -mig 1",
                &format!("$T/bin/nvidia-smi mig -i 0 -cgi {full} -C")
            ],
            "{name}"
        );
    }
}

#[test]
fn setup_mig_dry_run_changes_nothing_and_notes_the_reset() {
    let host = FakeHost::new().not_root();
    let outcome = host.run(
        "setup_mig.sh",
        &["--gpu", "0", "--layout", "all-3g", "--dry-run"],
    );
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        lines(&outcome.stdout),
        [
            "$T/bin/nvidia-smi -i 0 -mig 1",
            "$T/bin/nvidia-smi mig -i 0 -cgi 3g.71gb,3g.71gb -C"
        ]
    );
    assert!(
        outcome
            .stderr
            .contains("a GPU reset or reboot comes before the next command"),
        "{outcome:#?}"
    );
    assert!(host.changes().is_empty(), "{:?}", host.changes());
}

#[test]
fn setup_mig_refuses_unknown_gpu_models() {
    for name in [
        "Tesla T4",
        "NVIDIA H100 NVL",
        "NVIDIA H200 NVL",
        "NVIDIA GH200 480GB",
    ] {
        let host = FakeHost::new().with("STUB_GPU_NAME", name);
        let outcome = host.run("setup_mig.sh", &["--layout", "full"]);
        assert_refused(
            &outcome,
            6,
            &format!("GPU 0 is a '{name}', whose MIG profiles this script does not know; known models: A100-40GB A100-80GB H100-80GB H200-141GB"),
        );
        assert!(host.changes().is_empty());
    }
}

#[test]
fn setup_mig_refuses_a_gpu_without_mig() {
    let host = FakeHost::new()
        .with("STUB_MIG_MODE", "N/A")
        .with("STUB_GPU_NAME", "NVIDIA A100-PCIE-40GB");
    let outcome = host.run("setup_mig.sh", &["--layout", "full"]);
    assert_refused(
        &outcome,
        6,
        "GPU 0 (NVIDIA A100-PCIE-40GB) reports no MIG mode",
    );
}

#[test]
fn setup_mig_refuses_invalid_layouts_and_profiles() {
    let host = FakeHost::new();
    let cases: [(&[&str], &str); 6] = [
        (&["--layout", "all-5g"], "unknown layout 'all-5g'; layouts for H200-141GB: all-1g all-1g-large all-2g all-3g 4g-3g balanced full"),
        (&["--profiles", "3g.40gb"], "cannot create '3g.40gb' on H200-141GB: unknown profile '3g.40gb'; profiles for H200-141GB: 1g.18gb 1g.35gb 2g.35gb 3g.71gb 4g.71gb 7g.141gb"),
        (&["--profiles", "3g.71gb,3g.71gb,3g.71gb"], "3 instances of 3g.71gb requested, at most 2 fit"),
        (&["--profiles", "4g.71gb,3g.71gb,1g.18gb"], "the profiles need 8 of 7 compute slices and 9 of 8 memory slices"),
        (&["--profiles", "1g.35gb,1g.35gb,1g.35gb,2g.35gb,1g.18gb"], "the profiles need 6 of 7 compute slices and 9 of 8 memory slices"),
        (&["--profiles", "3g.71gb,,1g.18gb"], "empty profile name in the list"),
    ];
    for (args, message) in cases {
        assert_refused(&host.run("setup_mig.sh", args), 7, message);
    }
    assert!(host.changes().is_empty());
}

#[test]
fn setup_mig_takes_one_gpu_index() {
    let host = FakeHost::new();
    let outcome = host.run("setup_mig.sh", &["--gpu", "all", "--layout", "full"]);
    assert_refused(&outcome, 2, "--gpu takes a GPU index, not 'all'");
    assert!(host.changes().is_empty());
}

#[test]
fn setup_mig_needs_exactly_one_of_layout_and_profiles() {
    let host = FakeHost::new();
    for args in [&[][..], &["--layout", "full", "--profiles", "7g.141gb"][..]] {
        assert_refused(
            &host.run("setup_mig.sh", args),
            2,
            "give exactly one of --layout NAME or --profiles LIST",
        );
    }
}

#[test]
fn setup_mig_refuses_a_busy_gpu() {
    let host = FakeHost::new().with("STUB_COMPUTE_PIDS", "1234,5678");
    let outcome = host.run("setup_mig.sh", &["--layout", "full"]);
    assert_refused(
        &outcome,
        8,
        "GPU 0 is in use by process(es) 1234 5678; stop them before changing its MIG configuration",
    );
    assert!(host.changes().is_empty());

    let dry = host
        .not_root()
        .run("setup_mig.sh", &["--layout", "full", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert!(
        dry.stderr
            .contains("warning: GPU 0 is in use by process(es) 1234 5678"),
        "{dry:#?}"
    );
}

#[test]
fn setup_mig_keeps_existing_instances_unless_replace() {
    let host = FakeHost::new()
        .with("STUB_MIG_MODE", "Enabled")
        .with("STUB_MIG_INSTANCES", "7g.141gb");
    let outcome = host.run("setup_mig.sh", &["--layout", "all-2g"]);
    assert_refused(
        &outcome,
        9,
        "GPU 0 already has 1 MIG GPU instance(s); add --replace",
    );
    assert!(host.changes().is_empty());

    let outcome = host.run("setup_mig.sh", &["--layout", "all-2g", "--replace"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-smi mig -i 0 -dci",
            "nvidia-smi mig -i 0 -dgi",
            "nvidia-smi mig -i 0 -cgi 2g.35gb,2g.35gb,2g.35gb -C",
        ]
    );
}

#[test]
fn setup_mig_stops_when_mig_mode_needs_a_reset() {
    let host = FakeHost::new().with("STUB_MIG_NEEDS_RESET", "1");
    let outcome = host.run("setup_mig.sh", &["--layout", "full"]);
    assert_refused(
        &outcome,
        11,
        "MIG mode on GPU 0 is Disabled now and Enabled after a reset",
    );
    assert!(
        outcome.stderr.contains("nvidia-smi -i 0 -r"),
        "{outcome:#?}"
    );
    assert_eq!(
        host.changes(),
        ["nvidia-smi -i 0 -mig 1"],
        "no instances before the reset"
    );
}

#[test]
fn setup_mig_reports_a_failed_create() {
    let host = FakeHost::new().with("STUB_FAIL_ARGS", "mig -i 0 -cgi 7g.141gb -C");
    let outcome = host.run("setup_mig.sh", &["--layout", "full"]);
    assert_refused(
        &outcome,
        1,
        "command failed with exit status 3: $T/bin/nvidia-smi mig -i 0 -cgi 7g.141gb -C",
    );
}

#[test]
fn setup_mig_lists_profiles_without_a_gpu() {
    let host = FakeHost::new()
        .not_root()
        .with("GPUSHARE_NVIDIA_SMI", "/nonexistent");
    let outcome = host.run("setup_mig.sh", &["--list"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    let listed = lines(&outcome.stdout);
    for line in [
        "  7g.40gb   7/7 8/8 x1",
        "  1g.18gb   1/7 1/8 x7",
        "  3g.71gb   3/7 4/8 x2",
        "  balanced      3g.71gb,2g.35gb,1g.18gb,1g.18gb",
        "  4g-3g         4g.40gb,3g.40gb",
    ] {
        assert!(
            listed.contains(&line),
            "{line:?} missing in\n{}",
            outcome.stdout
        );
    }
}

#[test]
fn disable_mig_destroys_instances_then_turns_mig_off() {
    let host = FakeHost::new()
        .with("STUB_MIG_MODE", "Enabled")
        .with("STUB_MIG_INSTANCES", "3g.71gb,3g.71gb");
    let outcome = host.run("disable_mig.sh", &["--gpu", "0"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-smi mig -i 0 -dci",
            "nvidia-smi mig -i 0 -dgi",
            "nvidia-smi -i 0 -mig 0"
        ]
    );
    assert!(
        outcome.stderr.contains("MIG is disabled on GPU 0"),
        "{outcome:#?}"
    );
}

#[test]
fn disable_mig_without_instances_only_turns_mig_off() {
    let host = FakeHost::new().with("STUB_MIG_MODE", "Enabled");
    let outcome = host.run("disable_mig.sh", &[]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(host.changes(), ["nvidia-smi -i 0 -mig 0"]);
}

#[test]
fn disable_mig_when_already_off_does_nothing() {
    let host = FakeHost::new();
    let outcome = host.run("disable_mig.sh", &[]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("MIG is already disabled on GPU 0; nothing to do"),
        "{outcome:#?}"
    );
    assert!(host.changes().is_empty());
}

#[test]
fn disable_mig_dry_run_prints_the_commands() {
    let host = FakeHost::new()
        .not_root()
        .with("STUB_MIG_MODE", "Enabled")
        .with("STUB_MIG_INSTANCES", "7g.141gb");
    let outcome = host.run("disable_mig.sh", &["--dry-run"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        lines(&outcome.stdout),
        [
            "$T/bin/nvidia-smi mig -i 0 -dci",
            "$T/bin/nvidia-smi mig -i 0 -dgi",
            "$T/bin/nvidia-smi -i 0 -mig 0"
        ]
    );
    assert!(host.changes().is_empty(), "{:?}", host.changes());
}

#[test]
fn disable_mig_refuses_a_busy_gpu() {
    let host = FakeHost::new()
        .with("STUB_MIG_MODE", "Enabled")
        .with("STUB_COMPUTE_PIDS", "999");
    let outcome = host.run("disable_mig.sh", &[]);
    assert_refused(&outcome, 8, "GPU 0 is in use by process(es) 999");
    assert!(host.changes().is_empty());
}

#[test]
fn disable_mig_stops_when_mig_mode_needs_a_reset() {
    let host = FakeHost::new()
        .with("STUB_MIG_MODE", "Enabled")
        .with("STUB_MIG_NEEDS_RESET", "1");
    let outcome = host.run("disable_mig.sh", &[]);
    assert_refused(
        &outcome,
        11,
        "MIG mode on GPU 0 is Enabled now and Disabled after a reset",
    );
    assert_eq!(host.changes(), ["nvidia-smi -i 0 -mig 0"]);
}

#[test]
fn disable_mig_refuses_a_gpu_without_mig() {
    let host = FakeHost::new().with("STUB_MIG_MODE", "N/A");
    let outcome = host.run("disable_mig.sh", &[]);
    assert_refused(
        &outcome,
        6,
        "GPU 0 reports no MIG mode: MIG is not available on it",
    );
}
