//! setup_time_slicing.sh: the compute-mode route and the Kubernetes device plugin route.

use std::fs;

use super::{assert_refused, lines, FakeHost};

#[test]
fn time_slicing_sets_default_compute_mode() {
    let host = FakeHost::new();
    let outcome = host.run("setup_time_slicing.sh", &["--gpu", "0"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(host.changes(), ["nvidia-smi -i 0 -c DEFAULT"]);
    assert!(
        outcome
            .stderr
            .contains("+ $T/bin/nvidia-smi -i 0 -c DEFAULT"),
        "{outcome:#?}"
    );
}

#[test]
fn time_slicing_on_all_gpus_sets_each_one() {
    let host = FakeHost::new().with("STUB_GPU_COUNT", "3");
    let outcome = host.run("setup_time_slicing.sh", &["--gpu=all"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        host.changes(),
        [
            "nvidia-smi -i 0 -c DEFAULT",
            "nvidia-smi -i 1 -c DEFAULT",
            "nvidia-smi -i 2 -c DEFAULT"
        ]
    );
}

#[test]
fn time_slicing_dry_run_prints_the_command_without_root() {
    let host = FakeHost::new().not_root();
    let outcome = host.run("setup_time_slicing.sh", &["--dry-run"]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        lines(&outcome.stdout),
        ["$T/bin/nvidia-smi -i 0 -c DEFAULT"]
    );
    assert!(host.changes().is_empty(), "{:?}", host.changes());
}

#[test]
fn time_slicing_warns_about_a_running_mps_daemon_and_mig() {
    let host = FakeHost::new().with("STUB_MIG_MODE", "Enabled");
    host.mps_daemon_running("pipe", 4242, &[]);
    let outcome = host.run("setup_time_slicing.sh", &[]);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("warning: an MPS control daemon is running"),
        "{outcome:#?}"
    );
    assert!(
        outcome.stderr.contains("warning: MIG is enabled on GPU 0"),
        "{outcome:#?}"
    );
    assert_eq!(host.changes(), ["nvidia-smi -i 0 -c DEFAULT"]);
}

const CONFIG_MAP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ts
  namespace: kube-system
data:
  a100: |-
    version: v1
    flags:
      migStrategy: none
    sharing:
      timeSlicing:
        renameByDefault: true
        failRequestsGreaterThanOne: true
        resources:
          - name: nvidia.com/gpu
            replicas: 4
";

#[test]
fn time_slicing_k8s_prints_the_device_plugin_config_map() {
    // No root and no nvidia-smi: the ConfigMap is for a cluster, not this host.
    let host = FakeHost::new()
        .not_root()
        .with("GPUSHARE_NVIDIA_SMI", "/nonexistent");
    let args = [
        "--k8s",
        "--replicas",
        "4",
        "--name",
        "ts",
        "--namespace=kube-system",
        "--config-key",
        "a100",
        "--rename-by-default",
        "--fail-requests-greater-than-one",
    ];
    let outcome = host.run("setup_time_slicing.sh", &args);
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(outcome.stdout, CONFIG_MAP);
    assert!(host.calls().is_empty());
}

#[test]
fn time_slicing_k8s_defaults_and_output_file() {
    let host = FakeHost::new();
    let file = host.path("cm.yaml");
    let dry = host.run(
        "setup_time_slicing.sh",
        &["--k8s", "--replicas", "2", "--output", &file, "--dry-run"],
    );
    assert_eq!(dry.code, 0, "{dry:#?}");
    assert!(
        dry.stderr
            .contains("would write the ConfigMap below to $T/cm.yaml"),
        "{dry:#?}"
    );
    assert!(!host.exists("cm.yaml"), "a dry run must not write the file");

    let outcome = host.run(
        "setup_time_slicing.sh",
        &["--k8s", "--replicas", "2", "--output", &file],
    );
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(outcome.stdout, "");
    let written = fs::read_to_string(&file).expect("reading the ConfigMap");
    assert_eq!(written, dry.stdout);
    for line in [
        "  name: time-slicing-config",
        "  namespace: gpu-operator",
        "  any: |-",
        "        renameByDefault: false",
        "        failRequestsGreaterThanOne: false",
        "            replicas: 2",
    ] {
        assert!(
            written.lines().any(|l| l == line),
            "{line:?} missing in\n{written}"
        );
    }
}

#[test]
fn time_slicing_k8s_rejects_bad_values() {
    let host = FakeHost::new();
    let cases: [(&[&str], &str); 6] = [
        (&["--k8s"], "--k8s needs --replicas N"),
        (
            &["--k8s", "--replicas", "1"],
            "--replicas takes a whole number of at least 2 (1 would not share), not '1'",
        ),
        (&["--k8s", "--replicas", "four"], "not 'four'"),
        (
            &["--k8s", "--replicas", "4", "--gpu", "0"],
            "--gpu does not apply to --k8s",
        ),
        (
            &["--k8s", "--replicas", "4", "--name", "Bad_Name"],
            "--name 'Bad_Name' is not a valid Kubernetes name",
        ),
        (&["--replicas", "4"], "--replicas and --output need --k8s"),
    ];
    for (args, message) in cases {
        assert_refused(&host.run("setup_time_slicing.sh", args), 2, message);
    }
    assert!(host.changes().is_empty());
}
