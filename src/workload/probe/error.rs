use cudarc::driver::DriverError;
use thiserror::Error;

/// Errors from opening the GPU, compiling, launching and checking the probe kernels.
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(
        "loading the CUDA driver library (libcuda.so.1): not found; is an NVIDIA driver installed?"
    )]
    NoDriver,
    #[error(
        "loading the NVRTC library (libnvrtc.so.13): not found; add the CUDA toolkit's lib64 \
         folder to LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    #[error("opening GPU {gpu_index}: {source}")]
    Open {
        gpu_index: usize,
        source: DriverError,
    },
    #[error("{action} on GPU {gpu_index}: {source}")]
    Driver {
        action: String,
        gpu_index: usize,
        source: DriverError,
    },
    #[error("compiling the probe kernels for {arch} with NVRTC: {log}")]
    Compile { arch: String, log: String },
    #[error(
        "checking `{kernel}` against the CPU reference: element {index} is {got}, expected \
         {expected}"
    )]
    Mismatch {
        kernel: &'static str,
        index: usize,
        got: f64,
        expected: f64,
    },
    #[error("reading the maximum SM clock of GPU {gpu_index}: {reason}")]
    Clock { gpu_index: usize, reason: String },
    #[error("sizing `{probe}`: {reason}")]
    Sizing { probe: &'static str, reason: String },
    #[error(
        "holding every thread slot with `{kernel}`: {fits} blocks of 256 threads fit on an SM, \
         {needed} are needed for its {max_threads_per_sm} threads; use occupancy = \"kernel\""
    )]
    Occupancy {
        kernel: &'static str,
        fits: u32,
        needed: u32,
        max_threads_per_sm: u32,
    },
    #[error("running `{probe}` before its prepare")]
    NotPrepared { probe: &'static str },
}
