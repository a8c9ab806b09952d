//! A mode set up by the platform the workers run on, not by gpushare: on Kubernetes the
//! node's NVIDIA device plugin runs time-slicing or the MPS control daemon, and a pod only
//! asks for `nvidia.com/gpu: 1`. The runner enters nothing and records whose set-up it was,
//! so a study's notes say the MPS limits were the plugin's (an equal share per replica),
//! not the scenario's.

use super::{worker, ModeContext, ModeGuard, ModeRecord, ModeSetting, SharingError, WorkerSharing};

pub struct PlatformGuard {
    workers: Vec<WorkerSharing>,
    note: String,
}

impl PlatformGuard {
    pub fn new(setting: &ModeSetting, context: &ModeContext) -> PlatformGuard {
        let note = match setting {
            ModeSetting::Exclusive | ModeSetting::TimeSlicing => format!(
                "{}: set up by the workers' platform (the node's device plugin), not by gpushare",
                setting.name()
            ),
            ModeSetting::Mps(_) | ModeSetting::Mig(_) => format!(
                "{}: set up by the workers' platform (the node's device plugin), not by gpushare; \
                 the scenario's {} parameters were not applied",
                setting.name(),
                setting.name()
            ),
        };
        PlatformGuard {
            workers: context.workers.clone(),
            note,
        }
    }
}

impl ModeGuard for PlatformGuard {
    fn tenant_env(&self, worker_idx: usize) -> Result<Vec<(String, String)>, SharingError> {
        worker(&self.workers, worker_idx)?;
        Ok(Vec::new())
    }

    fn record(&self) -> ModeRecord {
        ModeRecord {
            notes: vec![self.note.clone()],
        }
    }

    fn exit(self: Box<Self>) -> Result<(), SharingError> {
        Ok(())
    }
}
