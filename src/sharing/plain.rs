//! `exclusive` and `time-slicing`: the modes with nothing to set up.
//!
//! Under `exclusive` the runner starts tenants one after another (the isolated baseline);
//! under `time-slicing` it starts them together, each process with its own CUDA context,
//! scheduled by the driver's default time-slicing between contexts. Neither changes
//! anything on the host, so their guard has nothing to undo.

use super::{ModeGuard, ModeRecord, SharingError, TenantSharing};

pub struct PlainGuard;

impl ModeGuard for PlainGuard {
    fn tenant_env(&self, _: &TenantSharing) -> Result<Vec<(String, String)>, SharingError> {
        Ok(Vec::new())
    }

    fn record(&self) -> ModeRecord {
        ModeRecord::default()
    }

    fn exit(self: Box<Self>) -> Result<(), SharingError> {
        Ok(())
    }
}
