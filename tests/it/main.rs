//! gpushare's integration tests: one binary, one module per area.

mod bench_scripts;
mod cli_usage;
mod common;
mod containers;
mod cost;
mod feasibility;
mod gpu_configs;
mod gpu_probes;
mod incomplete;
mod k8s;
// Its MPS client opens a CUDA context through cudarc directly.
#[cfg(feature = "cuda")]
mod gpu_sharing;
mod load;
mod merge;
mod monitor;
mod pipeline;
mod readme_figures;
mod reports;
mod run_prometheus;
mod scaling;
mod scenario_numbers;
mod scenarios;
mod serve;
mod serve_limits;
mod serve_tenant;
#[cfg(feature = "torch")]
mod serve_torch;
mod sharing_mps;
mod support;
mod tcp_transport;
#[cfg(feature = "torch")]
mod torch_models;
mod worker_failures;
