//! `container`: each worker runs in a container of its own on a Docker engine, the image's
//! gpushare running its hidden `worker` subcommand with the protocol on the container's
//! attached stdin and stdout.
//!
//! testcontainers-rs finds and configures the engine client (`DOCKER_HOST`, its properties
//! file, TLS); every call goes through its re-export of bollard. Its launcher itself
//! (`GenericImage` + `AsyncRunner`) is not used: it speaks the newest engine API (1.53)
//! without negotiating, which engines before 25.0 refuse (Debian 12's 20.10 answers
//! "client version 1.53 is too new. Maximum supported API version is 1.41"), it pulls an
//! image it does not find, and it cannot attach to stdin. This backend negotiates the
//! version, never pulls, and attaches before it starts the container.
//!
//! **Invariant:** no container outlives its run. Every container is labelled (marker,
//! study, run, tenant, runner) and auto-removed; its stdin closes when the runner's attach
//! connection does, and the worker exits on end of stdin; a janitor process removes the
//! study's containers when the runner dies without doing so; containers of a runner that
//! is gone are removed when the next one starts.

mod body;
pub mod janitor;

pub use body::{
    create_body, test_image, BindMount, ContainerSettings, GpuRequest, Owner, BUILD_TEST_IMAGE,
    MARKER_LABEL, RUNNER_LABEL, RUN_LABEL, STUDY_LABEL, TENANT_LABEL,
};

use std::pin::Pin;

use futures_util::StreamExt;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::{
    BoxFuture, Isolation, IsolationError, WorkerConnection, WorkerExit, WorkerHandle, WorkerLaunch,
};
use crate::environment::{ContainerEnvironment, ImageRecord};

/// Bytes buffered between the attach stream and the runner's readers.
const PIPE_BYTES: usize = 1 << 16;

pub struct ContainerIsolation {
    docker: Docker,
    settings: ContainerSettings,
    study_id: String,
    runner: String,
    environment: ContainerEnvironment,
    /// Removes the study's containers if this process dies without doing so.
    _janitor: janitor::Janitor,
}

/// The engine's address as the client resolves it, for messages.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// A client for the engine, at the API version it speaks.
pub async fn connect_engine() -> Result<Docker, IsolationError> {
    let unreachable = |reason: String| IsolationError::EngineUnreachable {
        host: docker_host(),
        reason,
    };
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(e.to_string()))
}

/// `<host>:<pid>` of this process, the value of [`RUNNER_LABEL`].
pub fn runner_id() -> String {
    format!("{}:{}", crate::environment::hostname(), std::process::id())
}

impl ContainerIsolation {
    /// Connects to the engine, checks that every image is there (never pulls), removes
    /// what crashed runners left, and starts the janitor, which is `exe`'s hidden
    /// `container-janitor` subcommand (the running executable unless a caller such as a
    /// bench says otherwise). Returns the backend and one line per container it removed.
    pub async fn connect(
        settings: ContainerSettings,
        study_id: &str,
        exe: Option<std::path::PathBuf>,
    ) -> Result<(ContainerIsolation, Vec<String>), IsolationError> {
        let exe = match exe {
            Some(exe) => exe,
            None => std::env::current_exe().map_err(IsolationError::CurrentExe)?,
        };
        let docker = connect_engine().await?;
        let version = docker
            .version()
            .await
            .map_err(|e| IsolationError::EngineUnreachable {
                host: docker_host(),
                reason: e.to_string(),
            })?;
        let mut images = vec![];
        for image in settings.images() {
            let inspect = docker.inspect_image(image).await.map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 404, ..
                } => IsolationError::MissingImage {
                    image: image.to_string(),
                    build: build_hint(image),
                },
                other => IsolationError::Engine {
                    action: format!("inspecting image `{image}`"),
                    reason: other.to_string(),
                },
            })?;
            images.push(ImageRecord {
                name: image.to_string(),
                id: inspect.id.unwrap_or_default(),
                digest: inspect.repo_digests.and_then(|d| d.into_iter().next()),
            });
        }
        let removed = janitor::remove_orphans(&docker).await?;
        let runner = runner_id();
        let janitor = janitor::Janitor::start(&exe, study_id, &runner)
            .map_err(IsolationError::StartJanitor)?;
        let environment = ContainerEnvironment {
            engine_version: version.version.unwrap_or_default(),
            api_version: docker.client_version().to_string(),
            images,
        };
        Ok((
            ContainerIsolation {
                docker,
                settings,
                study_id: study_id.to_string(),
                runner,
                environment,
                _janitor: janitor,
            },
            removed,
        ))
    }
}

/// How to get an image gpushare does not find.
fn build_hint(image: &str) -> String {
    if image == test_image() {
        format!("build it with `{BUILD_TEST_IMAGE}`")
    } else {
        "build it from docker/Dockerfile (see docker/README.md)".to_string()
    }
}

impl Isolation for ContainerIsolation {
    fn name(&self) -> &'static str {
        "container"
    }

    fn container_environment(&self) -> Option<ContainerEnvironment> {
        Some(self.environment.clone())
    }

    fn spawn<'a>(
        &'a self,
        launch: &'a WorkerLaunch<'a>,
    ) -> BoxFuture<'a, Result<WorkerConnection, IsolationError>> {
        Box::pin(self.start(launch))
    }
}

impl ContainerIsolation {
    async fn start(&self, launch: &WorkerLaunch<'_>) -> Result<WorkerConnection, IsolationError> {
        let (uid, gid) = (
            // SAFETY: getuid and getgid cannot fail and touch no memory.
            unsafe { libc::getuid() },
            unsafe { libc::getgid() },
        );
        let owner = Owner {
            study_id: &self.study_id,
            runner: &self.runner,
            uid,
            gid,
        };
        let body = create_body(&self.settings, launch, &owner);
        let image = body.image.clone().unwrap_or_default();
        let engine = |action: &str, e: DockerError| IsolationError::Engine {
            action: format!("{action} the container of tenant `{}`", launch.tenant),
            reason: e.to_string(),
        };
        let id = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| engine("creating", e))?
            .id;
        let mut guard = RemoveOnDrop {
            docker: Some(self.docker.clone()),
            id: id.clone(),
        };
        // Attach and wait before starting: nothing the worker writes is missed, and the
        // exit status is caught before auto-removal deletes the container.
        let attach = self
            .docker
            .attach_container(
                &id,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stdin(true)
                        .stdout(true)
                        .stderr(true)
                        .stream(true)
                        .build(),
                ),
            )
            .await
            .map_err(|e| engine("attaching to", e))?;
        let (exit_tx, exit_rx) = oneshot::channel();
        let waiter = self.docker.clone();
        let wait_id = id.clone();
        tokio::spawn(async move {
            let options = WaitContainerOptionsBuilder::new()
                .condition("next-exit")
                .build();
            let mut stream = waiter.wait_container(&wait_id, Some(options));
            let exit = match stream.next().await {
                Some(Ok(response)) => Some(exit_from_status(response.status_code)),
                Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                    Some(exit_from_status(code))
                }
                _ => None,
            };
            let _ = exit_tx.send(exit);
        });
        if let Err(err) = self.docker.start_container(&id, None).await {
            return Err(IsolationError::StartContainer {
                tenant: launch.tenant.to_string(),
                image,
                message: engine_message(err),
            });
        }
        let (from_worker, stdout_tx) = tokio::io::simplex(PIPE_BYTES);
        let (diagnostics, stderr_tx) = tokio::io::simplex(PIPE_BYTES);
        tokio::spawn(demultiplex(attach.output, stdout_tx, stderr_tx));
        let docker = guard.docker.take();
        Ok(WorkerConnection {
            from_worker: Box::new(from_worker),
            to_worker: Box::new(StdinWriter(Some(attach.input))),
            diagnostics: Some(Box::new(diagnostics)),
            handle: Box::new(ContainerHandle {
                docker,
                id,
                exit_rx: Some(exit_rx),
                exit: None,
            }),
        })
    }
}

/// The engine's own words for a failure, without bollard's wrapping.
fn engine_message(err: DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// A container exits with its process's status, or 128 + the signal that ended it.
fn exit_from_status(status: i64) -> WorkerExit {
    match i32::try_from(status) {
        Ok(code) if (129..=128 + 64).contains(&code) => WorkerExit {
            code: None,
            signal: Some(code - 128),
        },
        Ok(code) => WorkerExit {
            code: Some(code),
            signal: None,
        },
        Err(_) => WorkerExit::default(),
    }
}

/// Splits the attach stream into the worker's stdout and stderr.
async fn demultiplex(
    mut output: Pin<Box<dyn futures_util::Stream<Item = Result<LogOutput, DockerError>> + Send>>,
    mut stdout: tokio::io::WriteHalf<tokio::io::SimplexStream>,
    mut stderr: tokio::io::WriteHalf<tokio::io::SimplexStream>,
) {
    while let Some(Ok(chunk)) = output.next().await {
        let written = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                stdout.write_all(&message).await
            }
            LogOutput::StdErr { message } => stderr.write_all(&message).await,
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            break;
        }
    }
    let _ = stdout.shutdown().await;
    let _ = stderr.shutdown().await;
}

/// The container's stdin. Dropping it half-closes the attach connection, which closes the
/// worker's stdin (the container has `StdinOnce`), as dropping a child's stdin pipe does.
struct StdinWriter(Option<Pin<Box<dyn AsyncWrite + Send>>>);

impl AsyncWrite for StdinWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.0.as_mut() {
            Some(inner) => inner.as_mut().poll_write(cx, buf),
            None => std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(inner) => inner.as_mut().poll_flush(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(inner) => inner.as_mut().poll_shutdown(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }
}

impl Drop for StdinWriter {
    fn drop(&mut self) {
        if let (Some(mut inner), Ok(runtime)) =
            (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = inner.shutdown().await;
            });
        }
    }
}

/// Removes a container that never got to run (its start failed, or its spawn was
/// abandoned).
struct RemoveOnDrop {
    docker: Option<Docker>,
    id: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(docker) = self.docker.take() {
            remove_in_background(docker, std::mem::take(&mut self.id));
        }
    }
}

fn remove_in_background(docker: Docker, id: String) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(&id, Some(options)).await;
        });
    }
}

/// A started container; force-removed on drop if it has not ended.
struct ContainerHandle {
    docker: Option<Docker>,
    id: String,
    exit_rx: Option<oneshot::Receiver<Option<WorkerExit>>>,
    /// How it ended, once `wait` has seen it.
    exit: Option<WorkerExit>,
}

impl WorkerHandle for ContainerHandle {
    fn wait(&mut self) -> BoxFuture<'_, Option<WorkerExit>> {
        Box::pin(async move {
            if let Some(rx) = self.exit_rx.as_mut() {
                self.exit = rx.await.ok().flatten();
                self.exit_rx = None;
            }
            self.exit
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(docker) = &self.docker {
                let options = KillContainerOptionsBuilder::new().signal("KILL").build();
                let _ = docker.kill_container(&self.id, Some(options)).await;
            }
        })
    }
}

impl Drop for ContainerHandle {
    fn drop(&mut self) {
        let ended = self.exit_rx.is_none();
        if let (false, Some(docker)) = (ended, self.docker.take()) {
            remove_in_background(docker, std::mem::take(&mut self.id));
        }
    }
}

#[cfg(test)]
mod tests;
