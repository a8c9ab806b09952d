//! A running study's live figures, for `gpushare run --prometheus ADDR`: a runner
//! [`Observer`](crate::runner::Observer) that keeps the current run's phase and each
//! tenant's window so far (items, throughput, step and latency distributions), the runs
//! finished out of those planned, and each finished run's NP; and their Prometheus text,
//! with the GPU's dcgm-named figures while the run has an NVML sampler.
//!
//! It sits above `runner` and `metrics`: the runner reports what it handles anyway, and
//! the figures of a finished run are `metrics::analyze`'s, so they are the report's
//! (against the exclusive runs recorded so far). Nothing here measures or decides what a
//! run measures; a scrape only reads.
//!
//! **Invariant:** never slows the runner beyond a lock and a few counter updates per
//! batch of samples; a scrape renders outside the runner's tasks.

mod study;
mod text;

pub use study::{LiveStudy, StudyLabels};
