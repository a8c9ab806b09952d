//! gpushare's integration tests: one binary, one module per area.

mod common;
mod gpu_configs;
mod gpu_probes;
mod gpu_sharing;
mod pipeline;
mod scenarios;
mod sharing_mps;
mod worker_failures;
