//! What a worker runs. This module owns the workloads themselves and must not know about
//! other tenants, sharing modes or the runner.

#[cfg(feature = "torch")]
pub mod torch;
