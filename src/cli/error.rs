use thiserror::Error;

use super::exit;
use crate::results::store::StoreError;

/// Errors a command reports; each maps to a documented exit code.
#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Runner(#[from] crate::runner::RunnerError),
    #[error(transparent)]
    Store(#[from] crate::results::store::StoreError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error(transparent)]
    Host(#[from] crate::doctor::HostError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorError),
    #[error("{0}")]
    NoGpu(String),
    #[error("drawing the live view in this terminal")]
    Terminal(#[source] std::io::Error),
    #[error(transparent)]
    Merge(#[from] crate::merge::MergeError),
    #[error(transparent)]
    Kubernetes(#[from] crate::kubernetes::KubernetesError),
    #[error("{0}")]
    Usage(String),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Scenario(_)
            | CliError::Usage(_)
            | CliError::Host(_)
            | CliError::Report(_) => exit::USAGE,
            // What the command line named: a bad value, or a path that is no study.
            CliError::Load(
                crate::load::LoadError::Url { .. }
                | crate::load::LoadError::Config { .. }
                | crate::load::LoadError::BodyFile { .. },
            )
            | CliError::Serve(crate::serve::ServeError::Config { .. })
            | CliError::Store(StoreError::NotAStudy { .. } | StoreError::Version { .. }) => {
                exit::USAGE
            }
            CliError::Store(StoreError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                exit::USAGE
            }
            CliError::Kubernetes(crate::kubernetes::KubernetesError::Scenario(_)) => exit::USAGE,
            CliError::Runner(_)
            | CliError::Store(_)
            | CliError::Runtime(_)
            | CliError::Serve(_)
            | CliError::Load(_)
            | CliError::Monitor(_)
            | CliError::NoGpu(_)
            | CliError::Terminal(_)
            | CliError::Kubernetes(_) => exit::ERROR,
            CliError::Merge(crate::merge::MergeError::Store(_)) => exit::ERROR,
            CliError::Merge(_) => exit::USAGE,
        }
    }
}
