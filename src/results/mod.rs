//! Results: the `run.json` schema a study is recorded in, and its atomic store.
//!
//! Everything below the reports reads and writes studies through this module: the runner
//! records into it, `metrics` computes from it, `report` renders from it.
//!
//! **Invariant:** computes and renders nothing; depends on no module above it (`metrics`,
//! `report`, `runner`, `cli`).

pub mod schema;
pub mod store;
#[cfg(test)]
pub mod testing;

pub use schema::{Study, SCHEMA_VERSION};
pub use store::{read_study, write_study, StoreError, StudyLock, RUN_FILE, RUN_FILE_GZ};
