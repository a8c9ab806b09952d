//! The GPU probes: small cudarc workloads with known, checkable behaviour that show what a
//! sharing mode does to the compute, memory bandwidth and launch latency a tenant gets.
//!
//! | workload | kernel | item | throughput reads as |
//! | --- | --- | --- | --- |
//! | `probe.compute` | FP32 FMA chains, one full wave of resident blocks | GFLOP | GFLOP/s |
//! | `probe.memory` | 16-byte grid-stride copy over buffers far past L2 | GB (read + written) | GB/s |
//! | `probe.latency` | one warp, launched every `interval_us` | launch | launches/s, plus latency |
//!
//! `occupancy` sets how much of each SM a compute or memory launch holds: `kernel` (the
//! blocks the kernel's register use fits, which may leave thread slots free for another
//! MPS client's small launches) or `full` (a variant compiled with `__launch_bounds__`
//! to fit the SM's most threads, so the grid holds every thread slot for the whole
//! launch, as a large GEMM's full waves do).
//!
//! Kernels are CUDA C compiled at run time by NVRTC for the GPU found, and each is checked
//! against a CPU reference during `prepare` before anything is measured. Each probe sizes
//! its launches during `prepare` so a step takes about `step_ms` on the GPU as it is then.
//! The `measure`-style functions ([`compute_tflops`], [`copy_figures`], ...) are what the
//! benches call to place those figures against the GPU's ceilings.
//!
//! Probes use CUDA device 0 as the worker's environment exposes it (a runner selects a GPU
//! or MIG instance with `CUDA_VISIBLE_DEVICES`). They know nothing of other tenants.
//!
//! Without the `cuda` feature only the parameter descriptions are compiled, so
//! `gpushare list` still documents the probes.

pub(crate) mod params;

#[cfg(feature = "cuda")]
mod compute;
#[cfg(feature = "cuda")]
mod error;
#[cfg(feature = "cuda")]
mod gpu;
#[cfg(feature = "cuda")]
mod items;
#[cfg(feature = "cuda")]
mod kernels;
#[cfg(feature = "cuda")]
mod latency;
#[cfg(feature = "cuda")]
mod measure;
#[cfg(feature = "cuda")]
mod memory;

#[cfg(feature = "cuda")]
pub use compute::{compute_tflops, fp32_peak_tflops, ComputeKernel, ComputeProbe};
#[cfg(feature = "cuda")]
pub use error::ProbeError;
#[cfg(feature = "cuda")]
pub use gpu::{fp32_lanes_per_sm, gpu_available, Gpu};
#[cfg(feature = "cuda")]
pub use latency::{launch_latency_us, LatencyProbe, TouchKernel};
#[cfg(feature = "cuda")]
pub use memory::{copy_figures, d2d_copy_gbps, memory_gbps, CopyFigures, CopyKernel, MemoryProbe};

use super::{ParamInfo, Params, Workload, WorkloadError};

/// The probes' parameters, described with or without the `cuda` feature.
pub const COMPUTE_PARAMS: &[ParamInfo] = &[params::STEP_MS, params::OCCUPANCY];
pub const MEMORY_PARAMS: &[ParamInfo] = &[params::STEP_MS, params::BUFFER_MB, params::OCCUPANCY];
pub const LATENCY_PARAMS: &[ParamInfo] = &[params::INTERVAL_US];

/// Whether this build can run the probes (it cannot check for a GPU: that happens when a
/// probe is prepared).
#[cfg(feature = "cuda")]
pub const AVAILABILITY: super::Availability = super::Availability::Available;
#[cfg(not(feature = "cuda"))]
pub const AVAILABILITY: super::Availability =
    super::Availability::Unavailable("built without the cuda feature");

/// Constructors for the registry, one per probe.
pub fn build_compute(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    #[cfg(feature = "cuda")]
    return ComputeProbe::build(params, seed);
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (params::step_ms("probe.compute", params)?, seed);
        let _ = params::occupancy("probe.compute", params)?;
        unavailable("probe.compute")
    }
}

pub fn build_memory(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    #[cfg(feature = "cuda")]
    return MemoryProbe::build(params, seed);
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (params::step_ms("probe.memory", params)?, seed);
        let _ = params::buffer_bytes("probe.memory", params)?;
        let _ = params::occupancy("probe.memory", params)?;
        unavailable("probe.memory")
    }
}

pub fn build_latency(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    #[cfg(feature = "cuda")]
    return LatencyProbe::build(params, seed);
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (params::interval_us("probe.latency", params)?, seed);
        unavailable("probe.latency")
    }
}

/// The workload error for a probe that failed during set-up.
#[cfg(feature = "cuda")]
fn prepare_error(name: &'static str) -> impl Fn(ProbeError) -> WorkloadError {
    move |e| WorkloadError::Prepare {
        workload: name.into(),
        reason: e.to_string(),
    }
}

/// One measured step of a throughput probe (compute, memory): runs `run` on the prepared
/// state, counts the step, and maps a failure to the workload error naming the step.
#[cfg(feature = "cuda")]
fn throughput_step<S>(
    name: &'static str,
    state: Option<&mut S>,
    steps_done: &mut u64,
    run: impl FnOnce(&mut S) -> Result<u64, ProbeError>,
) -> Result<super::Step, WorkloadError> {
    let step_err = step_error(name, *steps_done);
    let state = state.ok_or_else(|| step_err(ProbeError::NotPrepared { probe: name }))?;
    let items = run(state).map_err(step_err)?;
    *steps_done += 1;
    Ok(super::Step {
        items,
        latency_s: None,
        failed: 0,
    })
}

/// Runs `step` over and over for `warmup`, at least once: a probe's warm-up before Ready.
#[cfg(feature = "cuda")]
fn warm_up<T>(
    warmup: std::time::Duration,
    mut step: impl FnMut() -> Result<T, ProbeError>,
) -> Result<(), ProbeError> {
    let start = std::time::Instant::now();
    loop {
        step()?;
        if start.elapsed() >= warmup {
            return Ok(());
        }
    }
}

/// The workload error for a probe that failed in measured step `step`.
#[cfg(feature = "cuda")]
fn step_error(name: &'static str, step: u64) -> impl Fn(ProbeError) -> WorkloadError {
    move |e| WorkloadError::Step {
        workload: name.into(),
        step,
        reason: e.to_string(),
    }
}

/// Without the `cuda` feature a probe still checks its parameters, then says why it
/// cannot run.
#[cfg(not(feature = "cuda"))]
fn unavailable(name: &str) -> Result<Box<dyn Workload>, WorkloadError> {
    Err(WorkloadError::Unavailable {
        name: name.to_string(),
        reason: "built without the cuda feature".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{find, Availability};

    #[test]
    fn probes_are_registered_with_items_that_make_throughput_read_in_gflop_and_gb() {
        for (name, item) in [
            ("probe.compute", "GFLOP"),
            ("probe.memory", "GB"),
            ("probe.latency", "launches"),
        ] {
            let info = find(name).unwrap();
            assert_eq!(info.item, item);
            assert_eq!(info.device, crate::workload::Device::Gpu);
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn building_a_probe_checks_parameters_without_touching_a_gpu() {
        assert_eq!(AVAILABILITY, Availability::Available);
        let mut params = Params::default();
        params
            .0
            .insert("step_ms".into(), crate::workload::ParamValue::Float(-1.0));
        let err = crate::workload::build("probe.compute", &params, 0)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "reading parameter `step_ms` of `probe.compute`: must be a number of milliseconds above 0 and at most 3600000, got -1"
        );
        // Building is pure (no CUDA context), so this works on a machine without a GPU;
        // stepping before prepare is an error, not a crash.
        let mut w = crate::workload::build("probe.memory", &Params::default(), 0).unwrap();
        assert_eq!(w.memory_peak_bytes(), None);
        assert_eq!(
            w.step().unwrap_err().to_string(),
            "running step 0 of `probe.memory`: running `probe.memory` before its prepare"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_cuda_the_probes_say_why_they_cannot_run() {
        let err = crate::workload::build("probe.latency", &Params::default(), 0)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "using workload `probe.latency`: built without the cuda feature"
        );
        assert_eq!(
            AVAILABILITY,
            Availability::Unavailable("built without the cuda feature")
        );
    }
}
