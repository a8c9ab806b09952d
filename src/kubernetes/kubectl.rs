//! `gpushare k8s run`: applies a rendered study with kubectl, waits for each runner pod
//! (or each index of the Job), reads the study from its log, and deletes the study's
//! namespace on success, failure and Ctrl-C.
//!
//! kubectl rather than a Rust client: it already reads the user's kubeconfig, contexts
//! and exec credential plugins (GKE's `gke-gcloud-auth-plugin`) exactly as the user's
//! other tools do, and gpushare needs only apply, get, logs and delete, so it adds no HTTP
//! or TLS stack to the build. The client logic here is tested against a stub `kubectl`
//! that replays API-shaped JSON (tests/it/k8s.rs); it has not run against a live cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::{transfer, KubernetesError};

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// The kubectl executable.
    pub program: PathBuf,
    /// `--context`, when given.
    pub context: Option<String>,
    /// `--kubeconfig`, when given.
    pub kubeconfig: Option<PathBuf>,
}

/// A pod to wait for and the directory its study goes to.
#[derive(Debug, Clone)]
pub struct Collect {
    /// A pod name, or `-l SELECTOR` pods of a Job (each written to `node-<index>`).
    pub target: Target,
    pub out: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Target {
    Pod(String),
    /// Pods matching a label selector, each an index of an Indexed Job.
    JobPods {
        selector: String,
        count: u32,
    },
}

/// What one collected study came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub pod: String,
    /// Where its run.json was written.
    pub run_json: PathBuf,
    /// Whether its pod succeeded (the runner's exit code 0: every run VALID).
    pub succeeded: bool,
}

impl Kubectl {
    async fn output(&self, args: &[&str]) -> Result<String, KubernetesError> {
        let mut cmd = Command::new(&self.program);
        if let Some(context) = &self.context {
            cmd.arg("--context").arg(context);
        }
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        cmd.args(args).kill_on_drop(true);
        let shown = args.join(" ");
        let output = cmd
            .output()
            .await
            .map_err(|source| KubernetesError::KubectlStart {
                args: shown.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(KubernetesError::Kubectl {
                args: shown,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn json(&self, args: &[&str]) -> Result<Value, KubernetesError> {
        let text = self.output(args).await?;
        serde_json::from_str(&text).map_err(|e| KubernetesError::KubectlOutput {
            args: args.join(" "),
            reason: e.to_string(),
        })
    }

    /// `kubectl apply -f FILE` for each file, in order.
    pub async fn apply(&self, files: &[PathBuf]) -> Result<(), KubernetesError> {
        for file in files {
            let file = file.display().to_string();
            self.output(&["apply", "-f", &file]).await?;
        }
        Ok(())
    }

    /// Deletes the namespace (and so everything the study created in it) without
    /// waiting for its finalizers.
    pub async fn delete_namespace(&self, namespace: &str) -> Result<(), KubernetesError> {
        self.output(&[
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--wait=false",
        ])
        .await
        .map(|_| ())
    }

    /// Waits for a pod to end; returns whether it succeeded.
    async fn wait_pod(
        &self,
        namespace: &str,
        pod: &str,
        poll: Duration,
    ) -> Result<bool, KubernetesError> {
        loop {
            let status = self
                .json(&["get", "pod", pod, "-n", namespace, "-o", "json"])
                .await?;
            match pod_phase(&status) {
                Some("Succeeded") => return Ok(true),
                Some("Failed") => return Ok(false),
                Some("Pending") => {
                    if let Some(reason) = stuck_reason(&status) {
                        return Err(KubernetesError::Pod {
                            pod: pod.to_string(),
                            reason,
                        });
                    }
                }
                _ => {}
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Waits for `count` pods of a Job to end; returns (name, index, succeeded).
    async fn wait_job_pods(
        &self,
        namespace: &str,
        selector: &str,
        count: u32,
        poll: Duration,
    ) -> Result<Vec<(String, u32, bool)>, KubernetesError> {
        loop {
            let list = self
                .json(&["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])
                .await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut ended = vec![];
            for item in &items {
                let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
                if pod_phase(item) == Some("Pending") {
                    if let Some(reason) = stuck_reason(item) {
                        return Err(KubernetesError::Pod { pod: name, reason });
                    }
                }
                let index = item["metadata"]["annotations"]
                    ["batch.kubernetes.io/job-completion-index"]
                    .as_str()
                    .and_then(|i| i.parse().ok());
                match (pod_phase(item), index) {
                    (Some("Succeeded"), Some(i)) => ended.push((name, i, true)),
                    (Some("Failed"), Some(i)) => ended.push((name, i, false)),
                    _ => {}
                }
            }
            if ended.len() as u32 >= count {
                ended.sort_by_key(|(_, i, _)| *i);
                return Ok(ended);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Reads a pod's study from its log and writes it as `out/run.json`.
    async fn collect_one(
        &self,
        namespace: &str,
        pod: &str,
        out: &Path,
    ) -> Result<PathBuf, KubernetesError> {
        let log = self.output(&["logs", pod, "-n", namespace]).await?;
        let json = transfer::decode(&log).map_err(|reason| KubernetesError::Transfer {
            pod: pod.to_string(),
            reason,
        })?;
        let path = out.join(crate::results::store::RUN_FILE);
        std::fs::create_dir_all(out)
            .and_then(|()| std::fs::write(&path, json))
            .map_err(|source| KubernetesError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Applies `files`, collects every target, and deletes `namespace` whatever happens.
    pub async fn run_study(
        &self,
        namespace: &str,
        files: &[PathBuf],
        collect: &[Collect],
        poll: Duration,
    ) -> Result<Vec<Collected>, KubernetesError> {
        let result = tokio::select! {
            result = self.apply_and_collect(namespace, files, collect, poll) => result,
            _ = tokio::signal::ctrl_c() => Err(KubernetesError::Interrupted {
                namespace: namespace.to_string(),
            }),
        };
        let deleted = self.delete_namespace(namespace).await;
        match (result, deleted) {
            (Ok(collected), Ok(())) => Ok(collected),
            (Err(err), _) => Err(err),
            (Ok(_), Err(err)) => Err(err),
        }
    }

    async fn apply_and_collect(
        &self,
        namespace: &str,
        files: &[PathBuf],
        collect: &[Collect],
        poll: Duration,
    ) -> Result<Vec<Collected>, KubernetesError> {
        self.apply(files).await?;
        let mut collected = vec![];
        for item in collect {
            match &item.target {
                Target::Pod(pod) => {
                    let succeeded = self.wait_pod(namespace, pod, poll).await?;
                    let run_json = self.collect_one(namespace, pod, &item.out).await?;
                    collected.push(Collected {
                        pod: pod.clone(),
                        run_json,
                        succeeded,
                    });
                }
                Target::JobPods { selector, count } => {
                    for (pod, index, succeeded) in self
                        .wait_job_pods(namespace, selector, *count, poll)
                        .await?
                    {
                        let out = item.out.join(format!("node-{index}"));
                        let run_json = self.collect_one(namespace, &pod, &out).await?;
                        collected.push(Collected {
                            pod,
                            run_json,
                            succeeded,
                        });
                    }
                }
            }
        }
        Ok(collected)
    }
}

fn pod_phase(pod: &Value) -> Option<&str> {
    pod["status"]["phase"].as_str()
}

/// A pending pod that will not start by itself: unschedulable, or its image not
/// pullable.
fn stuck_reason(pod: &Value) -> Option<String> {
    let statuses = pod["status"]["containerStatuses"].as_array();
    for status in statuses.into_iter().flatten() {
        let waiting = &status["state"]["waiting"];
        if let Some(reason @ ("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName")) =
            waiting["reason"].as_str()
        {
            let message = waiting["message"].as_str().unwrap_or("");
            return Some(format!("{reason}: {message}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_pull_failure_is_a_reason_to_stop_waiting() {
        let pod: Value = serde_json::json!({
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "runner", "state": {"waiting": {
                    "reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"gpushare:0.1.0\""}}}
            ]}
        });
        assert_eq!(
            stuck_reason(&pod).unwrap(),
            "ImagePullBackOff: Back-off pulling image \"gpushare:0.1.0\""
        );
        let creating: Value = serde_json::json!({
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "runner", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}
        });
        assert_eq!(stuck_reason(&creating), None);
    }
}
