use std::path::PathBuf;

use thiserror::Error;

use crate::gpu::GpuError;

/// Errors from setting up or tearing down a sharing mode.
#[derive(Debug, Error)]
pub enum SharingError {
    #[error("entering mode `{mode}`: {detail}")]
    InvalidSetting { mode: &'static str, detail: String },

    #[error("giving worker {worker_idx} its environment: the run has {n_workers} worker(s)")]
    NoSuchWorker { worker_idx: usize, n_workers: usize },

    #[error("reading GPU {gpu_index} for mode `{mode}`")]
    ReadingGpu {
        mode: &'static str,
        gpu_index: u32,
        #[source]
        source: GpuError,
    },

    #[error(
        "entering mode `{mode}`: GPU {gpu_index} is in compute mode {compute_mode}, \
         which {why}; set compute mode Default with \
         `gpu-configs/setup_time_slicing.sh --gpu {gpu_index}` (gpushare never changes GPU \
         settings)"
    )]
    ComputeModeForbids {
        mode: &'static str,
        gpu_index: u32,
        compute_mode: crate::gpu::ComputeMode,
        why: &'static str,
    },

    #[error(
        "starting MPS: an MPS control daemon not started by this run is already running \
         (pid {pid}, user id {uid}, pipe directory {pipe_dir}); stop it with \
         `CUDA_MPS_PIPE_DIRECTORY={pipe_dir} sh -c 'echo quit | {control}'` \
         or `gpu-configs/disable_mps.sh`{other_user}"
    )]
    ForeignMpsDaemon {
        pid: u32,
        uid: u32,
        pipe_dir: String,
        control: String,
        /// Extra advice when the daemon belongs to someone else.
        other_user: &'static str,
    },

    #[error("preparing the private MPS directory ({path})")]
    PreparingMpsDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("starting the MPS janitor (`sh`), which stops the daemon if gpushare is killed")]
    StartingMpsJanitor {
        #[source]
        source: std::io::Error,
    },

    #[error("running `{binary}` (is it installed and on PATH?)")]
    SpawningMpsControl {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "starting the MPS control daemon `{binary} -d` in {pipe_dir}: {status}{output}{log_tail}"
    )]
    StartingMpsDaemon {
        binary: PathBuf,
        pipe_dir: PathBuf,
        /// How it ended: `exit status: 1` or `no exit within 10 s`.
        status: String,
        /// What it printed, as `; it said: ...`, or empty.
        output: String,
        /// `control.log`'s last lines, as a block starting on a new line, or empty.
        log_tail: String,
    },

    #[error(
        "confirming the MPS control daemon in {pipe_dir} is up: it did not answer \
         `get_server_list` within {timeout_s} s{detail}{log_tail}"
    )]
    MpsDaemonNotUp {
        pipe_dir: PathBuf,
        timeout_s: u64,
        /// The last answer seen, as `; last answer: ...`, or empty.
        detail: String,
        log_tail: String,
    },

    #[error("sending `{command}` to the MPS control daemon in {pipe_dir}: {detail}{log_tail}")]
    MpsControlCommand {
        command: String,
        pipe_dir: PathBuf,
        detail: String,
        log_tail: String,
    },

    #[error(
        "stopping MPS in {pipe_dir}: process(es) {pids} still ran {timeout_s} s after `quit` \
         and were killed{log_tail}"
    )]
    StoppingMpsDaemon {
        pipe_dir: PathBuf,
        /// The survivors, as `1234 (nvidia-cuda-mps-server), ...`.
        pids: String,
        timeout_s: u64,
        log_tail: String,
    },

    #[error("removing the private MPS directory {dir}")]
    RemovingMpsDirectory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "placing tenants on MIG instances: GPU {gpu_index} ({gpu_name}) does not support MIG; \
         use mode `mps` or `time-slicing` on this GPU"
    )]
    MigNotSupported { gpu_index: u32, gpu_name: String },

    #[error(
        "placing tenants on MIG instances: MIG is disabled on GPU {gpu_index} ({gpu_name}){pending}; \
         enable it and create instances with `gpu-configs/setup_mig.sh` \
         (gpushare never changes GPU settings)"
    )]
    MigDisabled {
        gpu_index: u32,
        gpu_name: String,
        /// `, enabled after the next GPU reset` when that is pending, or empty.
        pending: &'static str,
    },

    #[error(
        "placing tenants on MIG instances: NVML could not say whether MIG is enabled on \
         GPU {gpu_index} ({gpu_name})"
    )]
    MigUnknown { gpu_index: u32, gpu_name: String },

    #[error(
        "placing {n_needed} worker(s) on MIG profile `{profile}` of GPU {gpu_index}: it has \
         {n_found} instance(s) of that profile ({available}); one instance per worker is \
         needed, create more with `gpu-configs/setup_mig.sh`"
    )]
    MigTooFewInstances {
        gpu_index: u32,
        profile: String,
        n_needed: usize,
        n_found: usize,
        /// What exists, as `2 x 1g.18gb, 1 x 3g.71gb` or `no instances`.
        available: String,
    },
}
