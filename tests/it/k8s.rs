//! `gpushare k8s`: the committed rendered examples are what `render` writes today, the
//! placement flags reach every GPU pod, and `k8s run` against a stub kubectl replaying
//! API-shaped JSON applies the study, waits, copies each study back from its runner's log
//! (a real study, carried as `--study-to-stdout` prints it) and deletes the namespace on
//! success, failure and Ctrl-C; for a sharded Indexed Job it brings back each index's
//! shard, and the shards merge into the whole sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    configs_of, gpushare, merge_into, quick_scenario, read_study, root, shard_run, stderr, stdout,
    swept, write_scenario,
};

fn files_in(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                files.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

fn render_into(dir: &Path, scenario: &str, extra: &[&str]) {
    let output = gpushare()
        .args(["k8s", "render", scenario, "--token", "example", "--out"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn committed_examples_are_what_render_writes() {
    let fresh = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .flatten()
    {
        let name = entry
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        render_into(&fresh.path().join(&name), &name, &[]);
    }
    render_into(
        &fresh.path().join("resnet50-train-bert-infer-3-nodes"),
        "resnet50-train-bert-infer",
        &["--nodes", "3"],
    );
    render_into(
        &fresh.path().join("scaling-serve-5-shards"),
        "scaling-serve",
        &["--nodes", "5", "--per-node", "shard"],
    );
    let committed = files_in(&root().join("kubernetes/examples"));
    let rendered = files_in(fresh.path());
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        rendered.keys().collect::<Vec<_>>(),
        "kubernetes/examples is stale: run scripts/render-k8s-examples.sh"
    );
    for (path, text) in &rendered {
        assert_eq!(
            &committed[path],
            text,
            "kubernetes/examples/{} is stale: run scripts/render-k8s-examples.sh",
            path.display()
        );
    }
}

#[test]
fn render_puts_each_strategy_on_its_labelled_node_and_says_how_to_label_it() {
    let output = gpushare()
        .args(["k8s", "render", "resnet50-train-bert-infer", "--token", "t"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let yaml = stdout(&output);
    assert!(yaml.contains("nvidia.com/device-plugin.config: gpushare-time-slicing"));
    assert!(yaml.contains("nvidia.com/device-plugin.config: gpushare-mps"));
    assert!(yaml.contains("- exclusive,time-slicing"), "{yaml}");
    assert_eq!(yaml.matches("nvidia.com/gpu: '1'").count(), 8, "{yaml}");
    assert!(yaml.contains("runAsNonRoot: true"));
    assert_eq!(
        stderr(&output),
        "time-slicing: runs exclusive, time-slicing; label its GPU node: kubectl label node NODE --overwrite nvidia.com/device-plugin.config=gpushare-time-slicing\n\
         mps: runs mps; label its GPU node: kubectl label node NODE --overwrite nvidia.com/device-plugin.config=gpushare-mps\n"
    );
}

#[test]
fn only_mps_tenant_pods_get_the_hosts_ipc_and_only_when_asked() {
    let render = |extra: &[&str]| {
        let output = gpushare()
            .args(["k8s", "render", "resnet50-train-bert-infer", "--token", "t"])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    // The NVIDIA device plugin mounts the MPS pipe and shm directories itself.
    assert!(!render(&[]).contains("hostIPC"));
    let yaml = render(&["--mps-host-ipc"]);
    let mps = &yaml[yaml.find("# mps.yaml").unwrap()..];
    let time_slicing = &yaml[..yaml.find("# mps.yaml").unwrap()];
    assert!(!time_slicing.contains("hostIPC"), "{time_slicing}");
    // Both tenants' pods, not the runner's (it holds no GPU).
    assert_eq!(mps.matches("hostIPC: true").count(), 2, "{mps}");
    let runner = &mps[..mps.find("name: worker\n").unwrap()];
    assert!(!runner.contains("hostIPC"), "{runner}");
}

#[test]
fn render_places_gpu_pods_by_node_or_selector() {
    let by_node = gpushare()
        .args([
            "k8s",
            "render",
            "smoke-cpu",
            "--node",
            "gpu-7",
            "--namespace",
            "lab",
        ])
        .output()
        .unwrap();
    let yaml = stdout(&by_node);
    assert!(yaml.contains("kubernetes.io/hostname: gpu-7"), "{yaml}");
    assert!(!yaml.contains("nodeSelector:\n        nvidia.com/device-plugin.config"));
    assert!(yaml.contains("namespace: lab"));
    let by_label = gpushare()
        .args(["k8s", "render", "smoke-cpu"])
        .args([
            "--node-selector",
            "cloud.google.com/gke-gpu-sharing-strategy=time-sharing",
        ])
        .output()
        .unwrap();
    assert!(stdout(&by_label).contains("cloud.google.com/gke-gpu-sharing-strategy: time-sharing"));
    let bad = gpushare()
        .args(["k8s", "render", "smoke-cpu", "--node-selector", "novalue"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains(
            "invalid value 'novalue' for '--node-selector <K=V>': expected K=V, got `novalue`"
        ),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn nodes_render_an_indexed_job_spread_one_per_host() {
    let output = gpushare()
        .args(["k8s", "render", "probes-mix", "--nodes", "4"])
        .output()
        .unwrap();
    let yaml = stdout(&output);
    assert!(yaml.contains("kind: Job"));
    assert!(yaml.contains("completionMode: Indexed"));
    assert!(yaml.contains("completions: 4"));
    assert!(yaml.contains("podAntiAffinity"));
    assert!(yaml.contains("topologyKey: kubernetes.io/hostname"));
    assert!(yaml.contains("nvidia.com/gpu.sharing-strategy: none"));
    // No runner Service or device-plugin sharing: each node runs its own study.
    assert!(!yaml.contains("kind: Service"));
    // Every index runs the whole scenario unless the sweep is sharded.
    assert!(!yaml.contains("--shard"));
}

#[test]
fn a_sharded_job_passes_each_index_its_shard_of_the_sweep() {
    let output = gpushare()
        .args(["k8s", "render", "scaling-serve", "--nodes", "5"])
        .args(["--per-node", "shard", "--token", "t"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let yaml = stdout(&output);
    assert!(yaml.contains("completions: 5"));
    // The index reaches `run --shard` through the downward API and the kubelet's `$(VAR)`.
    assert!(
        yaml.contains("        - --shard\n        - $(GPUSHARE_SHARD_INDEX)/5\n"),
        "{yaml}"
    );
    assert!(yaml.contains(
        "        - name: GPUSHARE_SHARD_INDEX\n          valueFrom:\n            fieldRef:\n              fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']\n"
    ), "{yaml}");
    // What an index's pod then runs: its shard, as the dry run shows.
    let dry = gpushare()
        .args(["run", "scaling-serve", "--shard", "4/5", "--dry-run"])
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).starts_with(
            "shard 4/5: configuration(s) c4 of 5 (c mod 5 = 4), every mode and repetition of each\n\
             scenario `scaling-serve`: 3 run(s) = 1 configuration(s) x 3 mode(s) x 1 repetition(s)\n"
        ),
        "{}",
        stdout(&dry)
    );
}

/// A real study's log line, as a runner pod prints it.
fn runner_log(dir: &Path, scenario: &Path) -> String {
    let output = gpushare()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(dir.join("local"))
        .args(["--study-to-stdout", "--monitor-interval-ms", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // kubectl logs interleaves the container's stderr and stdout.
    format!("{}{}", stderr(&output), stdout(&output))
}

fn pod_json(phase: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "runner-time-slicing", "namespace": "gpushare-quick"},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "runner", "ready": phase == "Running",
             "state": if phase == "Pending" {
                 serde_json::json!({"waiting": {"reason": "ContainerCreating"}})
             } else {
                 serde_json::json!({"running": {"startedAt": "2026-12-01T10:00:00Z"}})
             }}
        ]}
    })
    .to_string()
}

fn stub(dir: &Path) -> PathBuf {
    let stub_dir = dir.join("api");
    std::fs::create_dir_all(&stub_dir).unwrap();
    stub_dir
}

fn k8s_run(dir: &Path, stub_dir: &Path, scenario: &Path) -> std::process::Command {
    let mut cmd = gpushare();
    cmd.args(["k8s", "run"])
        .arg(scenario)
        .arg("--out")
        .arg(dir.join("k8s"))
        .arg("--kubectl")
        .arg(root().join("tests/it/k8s_stubs/kubectl"))
        .args(["--context", "gke_lab", "--poll-interval-ms", "20"])
        .env("KUBECTL_STUB_DIR", stub_dir);
    cmd
}

fn calls(stub_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(stub_dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.replace("--context gke_lab ", ""))
        .map(|l| {
            // Applied files live in a temporary directory: keep their names.
            match l.strip_prefix("apply -f ") {
                Some(path) => format!(
                    "apply -f {}",
                    Path::new(path).file_name().unwrap().to_string_lossy()
                ),
                None => l,
            }
        })
        .collect()
}

const DELETE: &str = "delete namespace gpushare-quick --ignore-not-found --wait=false";

#[test]
fn k8s_run_applies_waits_copies_the_study_back_and_deletes_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &quick_scenario(""));
    let stub_dir = stub(dir.path());
    for (n, phase) in ["Pending", "Running", "Succeeded"].iter().enumerate() {
        std::fs::write(
            stub_dir.join(format!("get-pod-runner-time-slicing.{}.json", n + 1)),
            pod_json(phase),
        )
        .unwrap();
    }
    std::fs::write(
        stub_dir.join("logs-runner-time-slicing.txt"),
        runner_log(dir.path(), &scenario),
    )
    .unwrap();
    let output = k8s_run(dir.path(), &stub_dir, &scenario).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        calls(&stub_dir),
        vec![
            "apply -f study.yaml",
            "apply -f time-slicing.yaml",
            "get pod runner-time-slicing -n gpushare-quick -o json",
            "get pod runner-time-slicing -n gpushare-quick -o json",
            "get pod runner-time-slicing -n gpushare-quick -o json",
            "logs runner-time-slicing -n gpushare-quick",
            DELETE,
        ]
    );
    // Every call carried the context.
    let raw = std::fs::read_to_string(stub_dir.join("calls")).unwrap();
    assert!(raw.lines().all(|l| l.starts_with("--context gke_lab ")));
    // The study came back whole: the same run.json as the runner wrote.
    let copied = dir.path().join("k8s/time-slicing/run.json");
    assert_eq!(
        std::fs::read_to_string(&copied).unwrap(),
        std::fs::read_to_string(dir.path().join("local/run.json")).unwrap()
    );
    let report = gpushare()
        .arg("report")
        .arg(dir.path().join("k8s/time-slicing"))
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
    assert!(stdout(&report).contains("VALID"), "{}", stdout(&report));
    // The applied manifests hold the token as a Secret, never in a pod's arguments.
    let applied = std::fs::read_to_string(stub_dir.join("applied/study.yaml")).unwrap();
    assert!(applied.contains("name: gpushare-token"));
}

#[test]
fn k8s_run_deletes_the_namespace_when_the_runner_fails() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &quick_scenario(""));
    let stub_dir = stub(dir.path());
    std::fs::write(
        stub_dir.join("get-pod-runner-time-slicing.1.json"),
        pod_json("Failed"),
    )
    .unwrap();
    std::fs::write(
        stub_dir.join("logs-runner-time-slicing.txt"),
        "error: failed to parse scenario\n",
    )
    .unwrap();
    let output = k8s_run(dir.path(), &stub_dir, &scenario).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).lines().last().unwrap(),
        "error: reading the study from the log of pod `runner-time-slicing`: no line starts with `GPUSHARE_STUDY_GZ_BASE64`"
    );
    assert_eq!(calls(&stub_dir).last().unwrap(), DELETE);
}

#[test]
fn k8s_run_stops_waiting_for_an_image_it_cannot_pull_and_deletes_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &quick_scenario(""));
    let stub_dir = stub(dir.path());
    let mut pod: Value = serde_json::from_str(&pod_json("Pending")).unwrap();
    pod["status"]["containerStatuses"][0]["state"] = serde_json::json!({"waiting": {
        "reason": "ErrImagePull", "message": "pull access denied for gpushare"}});
    std::fs::write(
        stub_dir.join("get-pod-runner-time-slicing.1.json"),
        pod.to_string(),
    )
    .unwrap();
    let output = k8s_run(dir.path(), &stub_dir, &scenario).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).lines().last().unwrap(),
        "error: waiting for pod `runner-time-slicing`: ErrImagePull: pull access denied for gpushare"
    );
    assert_eq!(calls(&stub_dir).last().unwrap(), DELETE);
}

#[test]
fn k8s_run_deletes_the_namespace_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &quick_scenario(""));
    let stub_dir = stub(dir.path());
    std::fs::write(
        stub_dir.join("get-pod-runner-time-slicing.1.json"),
        pod_json("Running"),
    )
    .unwrap();
    let child = k8s_run(dir.path(), &stub_dir, &scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is polling the runner, then interrupt it as a terminal would.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !calls(&stub_dir).iter().any(|c| c.starts_with("get pod")) {
        assert!(Instant::now() < deadline, "k8s run never polled");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("interrupted: deleted namespace `gpushare-quick`"));
    assert_eq!(calls(&stub_dir).last().unwrap(), DELETE);
}

/// The pods of the Indexed Job as `kubectl get pods -l job-name=... -o json` lists them.
fn job_pods_json(phase: &str) -> String {
    let items: Vec<Value> = (0..2)
        .map(|i| {
            serde_json::json!({
                "metadata": {
                    "name": format!("gpushare-quick-{i}-x7k2p"),
                    "annotations": {"batch.kubernetes.io/job-completion-index": i.to_string()}
                },
                "status": {"phase": phase}
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[test]
fn k8s_run_of_a_sharded_job_brings_back_each_shard_and_they_merge_into_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let text = swept(&quick_scenario(""));
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    let stub_dir = stub(dir.path());
    // Each index's log: a real study of its shard, as `--study-to-stdout` prints it.
    let children: Vec<_> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("local-{i}"));
            shard_run(&scenario, &out, &format!("{i}/2"))
                .arg("--study-to-stdout")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        std::fs::write(
            stub_dir.join(format!("logs-gpushare-quick-{i}-x7k2p.txt")),
            format!("{}{}", stderr(&output), stdout(&output)),
        )
        .unwrap();
    }
    std::fs::write(stub_dir.join("get-pods.1.json"), job_pods_json("Running")).unwrap();
    std::fs::write(stub_dir.join("get-pods.2.json"), job_pods_json("Succeeded")).unwrap();
    let output = k8s_run(dir.path(), &stub_dir, &scenario)
        .args(["--nodes", "2", "--per-node", "shard"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let get = "get pods -n gpushare-quick -l job-name=gpushare-quick -o json";
    assert_eq!(
        calls(&stub_dir),
        vec![
            "apply -f study.yaml",
            "apply -f job.yaml",
            get,
            get,
            "logs gpushare-quick-0-x7k2p -n gpushare-quick",
            "logs gpushare-quick-1-x7k2p -n gpushare-quick",
            DELETE,
        ]
    );
    let applied = std::fs::read_to_string(stub_dir.join("applied/job.yaml")).unwrap();
    assert!(
        applied.contains("- $(GPUSHARE_SHARD_INDEX)/2\n"),
        "{applied}"
    );
    let k8s = dir.path().join("k8s");
    for i in 0..2 {
        assert_eq!(
            std::fs::read_to_string(k8s.join(format!("node-{i}/run.json"))).unwrap(),
            std::fs::read_to_string(dir.path().join(format!("local-{i}/run.json"))).unwrap()
        );
    }
    assert!(
        stderr(&output).contains(&format!(
            "join the node studies into one: gpushare merge {0}/node-* --out {0}/merged",
            k8s.display()
        )),
        "{}",
        stderr(&output)
    );
    // The two shards are the whole sweep again.
    let merged = k8s.join("merged");
    let report = merge_into(&[k8s.join("node-0"), k8s.join("node-1")], &merged);
    assert!(
        report
            .contains("2 of the sweep's 2 configuration(s) ran, 0 of them on more than one node."),
        "{report}"
    );
    assert_eq!(configs_of(&read_study(&merged)), [0, 1]);
}
