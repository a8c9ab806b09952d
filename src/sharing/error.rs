use thiserror::Error;

/// Errors from setting up or tearing down a sharing mode.
#[derive(Debug, Error)]
pub enum SharingError {
    #[error("entering mode `{mode}`: this build of gpushare does not support it yet")]
    NotBuilt { mode: &'static str },
}
