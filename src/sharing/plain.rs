//! `exclusive` and `time-slicing`: the modes with nothing to set up.
//!
//! Under `exclusive` the runner starts tenants one after another (the isolated baseline);
//! under `time-slicing` it starts them together, each process with its own CUDA context,
//! scheduled by the driver's default time-slicing between contexts. Neither changes
//! anything on the host, so their guard has nothing to undo. Entering records the GPU's
//! compute mode when NVML answers, because it decides whether time-slicing can happen at
//! all; on a host without NVML (CI with the CPU fixture) one note says it was not recorded.

use super::{worker, ModeContext, ModeGuard, ModeRecord, ModeSetting, SharingError, WorkerSharing};
use crate::gpu::{self, ComputeMode};

pub struct PlainGuard {
    workers: Vec<WorkerSharing>,
    notes: Vec<String>,
}

impl PlainGuard {
    pub fn enter(setting: &ModeSetting, context: &ModeContext) -> PlainGuard {
        let note = match gpu::gpu_info(context.gpu_index) {
            Ok(info) => compute_mode_note(setting, &info),
            Err(error) => format!(
                "compute mode not recorded: {}",
                crate::errors::error_chain(&error)
            ),
        };
        PlainGuard {
            workers: context.workers.clone(),
            notes: vec![note],
        }
    }
}

fn compute_mode_note(setting: &ModeSetting, info: &gpu::GpuInfo) -> String {
    let Some(mode) = info.compute_mode else {
        return format!(
            "compute mode of GPU {} not recorded: {}",
            info.index,
            info.notes.join("; ")
        );
    };
    let mut note = format!("GPU {} ({}) compute mode: {mode}", info.index, info.name);
    // Not refused here: the runner does not know whether a tenant uses the GPU at all (the
    // CPU fixture does not), so the workers' own errors tell; this note says why.
    let warning = match (mode, setting) {
        (ComputeMode::Prohibited, _) => Some("no process can create a CUDA context"),
        (
            ComputeMode::ExclusiveProcess | ComputeMode::ExclusiveThread,
            ModeSetting::TimeSlicing,
        ) => {
            Some("only one process at a time can hold a CUDA context, so tenants cannot time-slice")
        }
        _ => None,
    };
    if let Some(warning) = warning {
        note.push_str(&format!(
            " (warning: {warning}; `gpu-configs/setup_time_slicing.sh` sets Default)"
        ));
    }
    note
}

impl ModeGuard for PlainGuard {
    fn tenant_env(&self, worker_idx: usize) -> Result<Vec<(String, String)>, SharingError> {
        worker(&self.workers, worker_idx)?;
        Ok(Vec::new())
    }

    fn record(&self) -> ModeRecord {
        ModeRecord {
            notes: self.notes.clone(),
        }
    }

    fn exit(self: Box<Self>) -> Result<(), SharingError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(compute_mode: Option<ComputeMode>) -> gpu::GpuInfo {
        gpu::GpuInfo {
            index: 0,
            name: "NVIDIA H200".into(),
            uuid: "GPU-0".into(),
            memory_total_bytes: None,
            compute_mode,
            mig: None,
            notes: vec!["compute mode: NVML could not say (NoPermission)".into()],
        }
    }

    #[test]
    fn records_the_compute_mode_found() {
        let note = compute_mode_note(&ModeSetting::TimeSlicing, &gpu(Some(ComputeMode::Default)));
        assert_eq!(note, "GPU 0 (NVIDIA H200) compute mode: Default");
    }

    #[test]
    fn warns_when_time_slicing_meets_exclusive_process() {
        let note = compute_mode_note(
            &ModeSetting::TimeSlicing,
            &gpu(Some(ComputeMode::ExclusiveProcess)),
        );
        assert!(
            note.contains("Exclusive_Process (warning: only one process"),
            "{note}"
        );
        let exclusive = compute_mode_note(
            &ModeSetting::Exclusive,
            &gpu(Some(ComputeMode::ExclusiveProcess)),
        );
        assert!(!exclusive.contains("warning"), "{exclusive}");
    }

    #[test]
    fn says_once_why_the_compute_mode_is_absent() {
        let note = compute_mode_note(&ModeSetting::Exclusive, &gpu(None));
        assert_eq!(
            note,
            "compute mode of GPU 0 not recorded: compute mode: NVML could not say (NoPermission)"
        );
    }

    #[test]
    fn without_nvml_one_note_says_so_and_workers_get_no_variables() {
        let context = ModeContext {
            workers: vec![WorkerSharing::default()],
            ..ModeContext::default()
        };
        let guard: Box<dyn ModeGuard> =
            Box::new(PlainGuard::enter(&ModeSetting::TimeSlicing, &context));
        let notes = guard.record().notes;
        assert_eq!(notes.len(), 1);
        // On a development machine without NVIDIA's driver NVML does not load; on a GPU
        // host the note names the compute mode instead.
        assert!(
            notes[0].starts_with("compute mode not recorded: ")
                || notes[0].contains("compute mode: "),
            "{notes:?}"
        );
        assert_eq!(guard.tenant_env(0).unwrap(), Vec::new());
        assert!(matches!(
            guard.tenant_env(1),
            Err(SharingError::NoSuchWorker {
                worker_idx: 1,
                n_workers: 1
            })
        ));
        guard.exit().unwrap();
    }
}
