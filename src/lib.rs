//! gpushare: measure ML workloads sharing one NVIDIA GPU.
//!
//! Modules in reading order: a scenario file becomes a plan, the runner executes it with
//! a sharing mode and an isolation backend, workers run workloads and stream samples,
//! metrics turn samples into figures, and reports render the results. ARCHITECTURE.md
//! has the map.

pub mod cli;
pub mod cost;
pub mod doctor;
pub mod environment;
pub mod errors;
pub mod gpu;
pub mod isolation;
pub mod kubernetes;
pub mod limits;
pub mod live;
pub mod load;
pub mod merge;
pub mod metrics;
#[cfg(feature = "torch")]
pub mod models;
pub mod monitor;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod sharing;
pub mod worker;
pub mod workload;
