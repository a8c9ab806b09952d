//! Metrics: pure functions from recorded samples to figures of merit, statistics across
//! repetitions and validity verdicts.
//!
//! **Invariant:** no I/O here. Everything is computed from the results schema, so any
//! report can be recomputed from `run.json` alone.

mod analysis;
pub mod baseline;
pub mod compare;
pub mod latency;
pub mod open_loop;
pub mod recommend;
pub mod sharing;
pub mod stats;
pub mod throughput;
pub mod validity;

pub use analysis::{analyze, Analysis, GroupAnalysis, RunAnalysis, TenantGroup, WindowGpu};
pub use baseline::Baseline;
pub use latency::{min_samples_for_percentile, LatencySummary};
pub use sharing::SharingFigures;
pub use stats::Estimate;
pub use throughput::{SloFigures, TenantFigures};
pub use validity::{FailedCheck, Verdict};
