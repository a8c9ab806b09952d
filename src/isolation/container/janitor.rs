//! The container janitor: removes a study's containers when the runner dies without doing
//! so (SIGKILL, the OOM killer), and, at start, the containers of runners that are gone.
//!
//! Like the MPS janitor (`sharing/mps_janitor.rs`) it is a small process next to the
//! runner, in its own process group (a Ctrl-C at the terminal does not reach it), ignoring
//! the usual termination signals, blocked reading a pipe whose only writer is the runner.
//! The kernel closes that pipe however the runner ends, so end-of-file means "the runner
//! is gone": it removes every container labelled with the study and the runner. It is
//! this executable's hidden `container-janitor` subcommand, so it needs no docker CLI.
//! After a normal end it finds nothing left and exits.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use clap::Args;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

use super::{MARKER_LABEL, RUNNER_LABEL, RUN_LABEL, STUDY_LABEL, TENANT_LABEL};
use crate::isolation::IsolationError;

/// A running janitor; dropping it closes its pipe, which is its signal to act.
pub struct Janitor {
    _child: Child,
}

impl Janitor {
    /// Starts `exe container-janitor` (`exe` must be gpushare).
    pub fn start(exe: &std::path::Path, study_id: &str, runner: &str) -> io::Result<Janitor> {
        let child = Command::new(exe)
            .args(["container-janitor", "--study", study_id, "--runner", runner])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Janitor { _child: child })
    }
}

/// The hidden `container-janitor` subcommand.
#[derive(Debug, Args)]
pub struct JanitorArgs {
    /// The study whose containers to remove.
    #[arg(long)]
    pub study: String,
    /// The runner (`<host>:<pid>`) that started them.
    #[arg(long)]
    pub runner: String,
}

/// Waits for end of stdin, then removes the containers of `args`' study and runner.
pub fn run(args: &JanitorArgs) -> Result<(), IsolationError> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: setting a signal's disposition to "ignore" before any thread starts.
        unsafe {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    let mut sink = [0u8; 64];
    let mut stdin = io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(IsolationError::StartJanitor)?;
    runtime.block_on(async {
        let docker = super::connect_engine().await?;
        let labels = [
            format!("{STUDY_LABEL}={}", args.study),
            format!("{RUNNER_LABEL}={}", args.runner),
        ];
        for _ in remove_labelled(&docker, &labels).await? {}
        Ok(())
    })
}

/// Removes the containers of runners on this host that are no longer alive, returning a
/// line for each (their run and tenant).
pub async fn remove_orphans(docker: &Docker) -> Result<Vec<String>, IsolationError> {
    let host = crate::environment::hostname();
    let containers = list(docker, &[format!("{MARKER_LABEL}=1")]).await?;
    let mut removed = vec![];
    for (id, labels) in containers {
        let Some(runner) = labels.get(RUNNER_LABEL) else {
            continue;
        };
        if !is_gone(runner, &host) {
            continue;
        }
        remove(docker, &id).await?;
        removed.push(format!(
            "{} (study {}, run {}, tenant {}, runner {runner})",
            &id[..id.len().min(12)],
            labels.get(STUDY_LABEL).map_or("?", String::as_str),
            labels.get(RUN_LABEL).map_or("?", String::as_str),
            labels.get(TENANT_LABEL).map_or("?", String::as_str),
        ));
    }
    Ok(removed)
}

/// Whether the runner `<host>:<pid>` is a process of this host that no longer exists.
/// Runners of other hosts (a shared engine) are never judged gone.
fn is_gone(runner: &str, host: &str) -> bool {
    let Some((runner_host, pid)) = runner.rsplit_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    runner_host == host && pid > 0 && unsafe { libc::kill(pid, 0) } != 0
}

/// Removes every container carrying all of `labels` (`key=value`), returning their ids.
pub async fn remove_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<String>, IsolationError> {
    let mut removed = vec![];
    for (id, _) in list(docker, labels).await? {
        remove(docker, &id).await?;
        removed.push(id);
    }
    Ok(removed)
}

/// Ids and labels of the containers, running or not, carrying all of `labels`.
pub async fn list(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<(String, HashMap<String, String>)>, IsolationError> {
    let filters = HashMap::from([("label", labels.to_vec())]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers =
        docker
            .list_containers(Some(options))
            .await
            .map_err(|e| IsolationError::Engine {
                action: "listing gpushare's containers".to_string(),
                reason: e.to_string(),
            })?;
    Ok(containers
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect())
}

async fn remove(docker: &Docker, id: &str) -> Result<(), IsolationError> {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(())
        | Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(e) => Err(IsolationError::Engine {
            action: format!("removing container {id}"),
            reason: e.to_string(),
        }),
    }
}
