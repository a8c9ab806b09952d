//! gpushare's integration tests: one binary, one module per concern.
#[cfg(feature = "cuda")]
mod gpu_sharing;
mod sharing_mps;
