//! gpushare's integration tests: one binary, one module per concern.
mod sharing_mps;
