//! gpushare's integration tests: one binary, one module per area.

mod common;
mod gpu_configs;
mod pipeline;
mod scenarios;
mod worker_failures;
