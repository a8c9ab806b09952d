//! The create-container body for each sharing mode's tenants, as sent to the engine.

use super::*;
use crate::isolation::WorkerLaunch;

const OWNER: Owner<'static> = Owner {
    study_id: "20260101-000000-probes-mix",
    runner: "gpuhost:4242",
    uid: 1000,
    gid: 1000,
};

fn body_json(
    settings: &ContainerSettings,
    tenant: &str,
    run: &str,
    env: &[(&str, &str)],
    gpu: bool,
) -> serde_json::Value {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let launch = WorkerLaunch {
        tenant,
        run_id: run,
        env: &env,
        gpu,
    };
    serde_json::to_value(create_body(settings, &launch, &OWNER)).expect("a create body serializes")
}

fn snapshot(name: &str, value: serde_json::Value) {
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(name, value, { ".Image" => "[test image]" });
    });
}

#[test]
fn exclusive_gpu_tenant_gets_every_gpu() {
    let settings = ContainerSettings::default();
    snapshot(
        "exclusive",
        body_json(&settings, "train", "exclusive/c0/r0/train", &[], true),
    );
}

#[test]
fn time_slicing_tenant_gets_the_configured_gpus_env_and_mounts() {
    let settings = ContainerSettings {
        gpus: GpuRequest::Ids(vec!["GPU-7c8a3b52-0000-0000-0000-000000000000".to_string()]),
        env: [("HF_HOME".to_string(), "/data/hf".to_string())].into(),
        mounts: vec![BindMount {
            source: "/srv/datasets".to_string(),
            target: "/data".to_string(),
            read_only: true,
        }],
        tenant_images: [("serve".to_string(), "gpushare-serve:0.1.0".to_string())].into(),
        ..ContainerSettings::default()
    };
    snapshot(
        "time_slicing",
        body_json(&settings, "serve#1", "time-slicing/c0/r0", &[], true),
    );
}

#[test]
fn mps_tenant_shares_the_daemons_pipe_directory_ipc_and_uid() {
    let settings = ContainerSettings {
        gpus: GpuRequest::Count(1),
        ..ContainerSettings::default()
    };
    let env = [
        (
            "CUDA_MPS_PIPE_DIRECTORY",
            "/tmp/gpushare-mps-1234/run0/pipe",
        ),
        ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "50"),
    ];
    snapshot(
        "mps",
        body_json(&settings, "train", "mps/c0/r0", &env, true),
    );
}

#[test]
fn mig_tenant_gets_its_instance_by_uuid() {
    let env = [(
        "CUDA_VISIBLE_DEVICES",
        "MIG-1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b",
    )];
    snapshot(
        "mig",
        body_json(
            &ContainerSettings::default(),
            "infer",
            "mig/c0/r0",
            &env,
            true,
        ),
    );
}

#[test]
fn cpu_tenant_gets_no_gpu() {
    let body = body_json(
        &ContainerSettings::default(),
        "cpu",
        "exclusive/c0/r0",
        &[],
        false,
    );
    assert_eq!(body["HostConfig"].get("DeviceRequests"), None);
    assert_eq!(body["HostConfig"]["NetworkMode"], "none");
    assert_eq!(body["Image"], test_image());
}

#[test]
fn container_statuses_above_128_are_signals() {
    assert_eq!(
        exit_from_status(134),
        WorkerExit {
            code: None,
            signal: Some(6)
        }
    );
    assert_eq!(
        exit_from_status(3),
        WorkerExit {
            code: Some(3),
            signal: None
        }
    );
    assert_eq!(
        exit_from_status(0),
        WorkerExit {
            code: Some(0),
            signal: None
        }
    );
}

#[test]
fn a_replica_runs_its_tenants_image() {
    let settings = ContainerSettings {
        tenant_images: [("serve".to_string(), "serve:1".to_string())].into(),
        ..ContainerSettings::default()
    };
    assert_eq!(settings.image_for("serve#2"), "serve:1");
    assert_eq!(settings.image_for("serve"), "serve:1");
    assert_eq!(settings.image_for("train"), test_image());
    assert_eq!(settings.images(), vec![test_image().as_str(), "serve:1"]);
}

#[test]
fn a_missing_image_says_how_to_build_it() {
    assert_eq!(
        build_hint(&test_image()),
        "build it with `scripts/build-test-image.sh`"
    );
    assert_eq!(
        build_hint("gpushare-train:0.1.0"),
        "build it from docker/Dockerfile (see docker/README.md)"
    );
}
