//! gpushare's integration tests: one binary, one module per area.

mod common;
mod pipeline;
mod scenarios;
mod worker_failures;
