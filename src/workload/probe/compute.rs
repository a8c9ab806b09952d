//! `probe.compute`: an FP32 FMA-bound kernel that keeps every SM's FP32 lanes busy, with
//! its CPU check, its sizing to a target launch time, and the peak it is measured against.
//!
//! Items are GFLOP (an FMA counts two FLOP), so the tenant's throughput in items/s reads
//! as GFLOP/s.

use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::gpu::fp32_lanes_per_sm;
use super::items::{WholeItems, GIGA};
use super::kernels::{self, BLOCK_THREADS, FLOP_PER_THREAD_ITER};
use super::measure::median;
use super::params::Occupancy;
use super::{params, Gpu, ProbeError};
use crate::workload::{Params, Step, Workload, WorkloadError};

const NAME: &str = "probe.compute";

/// The FMA kernel on one GPU, launched as one full wave of resident blocks.
pub struct ComputeKernel {
    gpu: Arc<Gpu>,
    function: CudaFunction,
    out: CudaSlice<f32>,
    grid_blocks: u32,
    a: f32,
    b: f32,
}

impl ComputeKernel {
    /// Compiles (once per GPU) and sets up the kernel with a grid that fills every SM.
    /// `seed` picks the FMA coefficients.
    pub fn new(gpu: &Arc<Gpu>, seed: u64) -> Result<Self, ProbeError> {
        Self::with_occupancy(gpu, seed, Occupancy::Kernel)
    }

    /// The same with the launch shape `occupancy` asks for: the blocks `fma_chains` fits,
    /// or every thread slot of every SM with `fma_chains_full` (computing) or
    /// `fma_chains_hold` (the same results, mostly waiting).
    pub fn with_occupancy(
        gpu: &Arc<Gpu>,
        seed: u64,
        occupancy: Occupancy,
    ) -> Result<Self, ProbeError> {
        // The `_full` variants' grid holds every thread slot of every SM.
        let full = |kernel| -> Result<(CudaFunction, u32), ProbeError> {
            let function = gpu.function(kernel)?;
            let blocks = gpu.full_blocks(&function, kernel)?;
            Ok((function, blocks))
        };
        let (function, grid_blocks) = match occupancy {
            Occupancy::Kernel => {
                let function = gpu.function(kernels::FMA_CHAINS)?;
                let blocks = gpu.resident_blocks(&function)?;
                (function, blocks)
            }
            Occupancy::Full => full(kernels::FMA_CHAINS_FULL)?,
            Occupancy::Hold => full(kernels::FMA_CHAINS_HOLD)?,
        };
        let threads = grid_blocks as usize * BLOCK_THREADS as usize;
        let out = gpu
            .stream()
            .alloc_zeros::<f32>(threads)
            .map_err(|e| gpu.driver_err(format!("allocating {threads} result floats"), e))?;
        let (a, b) = coefficients(seed);
        Ok(ComputeKernel {
            gpu: gpu.clone(),
            function,
            out,
            grid_blocks,
            a,
            b,
        })
    }

    /// FLOP one launch of `iters` iterations performs.
    pub fn flop_per_launch(&self, iters: u32) -> u128 {
        u128::from(self.grid_blocks)
            * u128::from(BLOCK_THREADS)
            * u128::from(iters)
            * u128::from(FLOP_PER_THREAD_ITER)
    }

    /// Enqueues one launch of `iters` iterations (does not wait).
    pub fn launch(&mut self, iters: u32) -> Result<(), ProbeError> {
        self.launch_blocks(self.grid_blocks, iters)
    }

    fn launch_blocks(&mut self, grid_blocks: u32, iters: u32) -> Result<(), ProbeError> {
        let grid_blocks = grid_blocks.min(self.grid_blocks);
        let config = LaunchConfig {
            grid_dim: (grid_blocks, 1, 1),
            block_dim: (BLOCK_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let stream = self.gpu.stream().clone();
        let mut launch = stream.launch_builder(&self.function);
        launch
            .arg(&mut self.out)
            .arg(&self.a)
            .arg(&self.b)
            .arg(&iters);
        // SAFETY: the arguments match `fma_chains(float*, float, float, unsigned int)` and
        // `out` holds one float per thread of the full grid, which bounds `grid_blocks`.
        unsafe { launch.launch(config) }
            .map(|_| ())
            .map_err(|e| self.gpu.driver_err("launching fma_chains", e))
    }

    /// Device time of one launch of `iters` iterations, in milliseconds.
    pub fn time_launch_ms(&mut self, iters: u32) -> Result<f64, ProbeError> {
        let gpu = self.gpu.clone();
        gpu.time_ms(|| self.launch(iters))
    }

    /// Iterations that make one launch take about `target_ms`, from two timed launches
    /// (the second corrects for the fixed cost the first includes).
    pub fn iters_for_ms(&mut self, target_ms: f64) -> Result<u32, ProbeError> {
        let probe_iters = 256;
        self.time_launch_ms(probe_iters)?; // first launch: module load, clocks ramping up
        let ms = self.time_launch_ms(probe_iters)?;
        let first_guess = scale_iters(probe_iters, ms, target_ms)?;
        let ms = self.time_launch_ms(first_guess)?;
        scale_iters(first_guess, ms, target_ms)
    }

    /// Runs a small launch (a few blocks, a few iterations, so the CPU reference is quick
    /// even in a debug build) and checks every thread's result against the CPU reference.
    pub fn verify(&mut self) -> Result<(), ProbeError> {
        let (blocks, iters) = (4, 3);
        let threads = (blocks.min(self.grid_blocks) * BLOCK_THREADS) as usize;
        let poison = vec![f32::NAN; self.out.len()];
        self.gpu
            .stream()
            .memcpy_htod(&poison, &mut self.out)
            .map_err(|e| self.gpu.driver_err("poisoning the fma_chains output", e))?;
        self.launch_blocks(blocks, iters)?;
        let got = self
            .gpu
            .stream()
            .clone_dtoh(&self.out)
            .map_err(|e| self.gpu.driver_err("reading the fma_chains output", e))?;
        for (tid, got) in got.iter().take(threads).enumerate() {
            let expected = kernels::fma_chains_reference(tid as u32, self.a, self.b, iters);
            // The CPU performs the same fused operations in the same order, so only a
            // wrong kernel (or a thread that never ran: NaN) misses this bound.
            let tolerance = 1e-6 * expected.abs().max(1.0);
            let error = (got - expected).abs();
            if error.is_nan() || error > tolerance {
                return Err(ProbeError::Mismatch {
                    kernel: kernels::FMA_CHAINS,
                    index: tid,
                    got: f64::from(*got),
                    expected: f64::from(expected),
                });
            }
        }
        Ok(())
    }
}

/// FMA coefficients with a fixed point near 1: `x = a x + b` stays finite and normal for
/// any number of iterations, so no launch size can hit infinities or denormals.
fn coefficients(seed: u64) -> (f32, f32) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a: f32 = rng.random_range(0.5..0.999);
    let b: f32 = (1.0 - a) * rng.random_range(0.5..2.0);
    (a, b)
}

fn scale_iters(iters: u32, measured_ms: f64, target_ms: f64) -> Result<u32, ProbeError> {
    if measured_ms.is_nan() || measured_ms <= 0.0 {
        return Err(ProbeError::Sizing {
            probe: NAME,
            reason: format!("a timed launch of {iters} iterations took {measured_ms} ms"),
        });
    }
    let scaled = f64::from(iters) * target_ms / measured_ms;
    Ok(scaled.round().clamp(1.0, f64::from(u32::MAX)) as u32)
}

/// FP32 FMA peak of the GPU in TFLOP/s: SMs x FP32 lanes per SM x 2 FLOP x maximum SM
/// clock. The clock is the driver's maximum, so a GPU that lowers its clock under load
/// (power or thermal limits) reaches less than this.
pub fn fp32_peak_tflops(gpu: &Gpu) -> Result<f64, ProbeError> {
    let lanes = fp32_lanes_per_sm(gpu.compute_capability()).ok_or(ProbeError::Sizing {
        probe: "fp32 peak",
        reason: format!(
            "FP32 lanes per SM are not known for compute capability {:?}",
            gpu.compute_capability()
        ),
    })?;
    let clock_mhz = gpu.max_sm_clock_mhz()?;
    Ok(f64::from(gpu.sm_count()) * f64::from(lanes) * 2.0 * f64::from(clock_mhz) * 1e6 / 1e12)
}

/// Measured FP32 FMA throughput in TFLOP/s: the median of several launches of about
/// `launch_ms` each, after the kernel has been checked against the CPU reference.
pub fn compute_tflops(gpu: &Arc<Gpu>, launch_ms: f64) -> Result<f64, ProbeError> {
    let mut kernel = ComputeKernel::new(gpu, 1)?;
    kernel.verify()?;
    let iters = kernel.iters_for_ms(launch_ms)?;
    let times: Vec<f64> = (0..7)
        .map(|_| kernel.time_launch_ms(iters))
        .collect::<Result<_, _>>()?;
    let ms = median(&times);
    Ok(kernel.flop_per_launch(iters) as f64 / (ms * 1e-3) / 1e12)
}

/// The `probe.compute` workload: one FMA launch of about `step_ms` per step.
pub struct ComputeProbe {
    step_ms: f64,
    occupancy: Occupancy,
    seed: u64,
    steps_done: u64,
    state: Option<ComputeState>,
}

struct ComputeState {
    kernel: ComputeKernel,
    iters: u32,
    items: WholeItems,
}

impl ComputeProbe {
    pub fn build(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
        Ok(Box::new(ComputeProbe {
            step_ms: params::step_ms(NAME, params)?,
            occupancy: params::occupancy(NAME, params)?,
            seed,
            steps_done: 0,
            state: None,
        }))
    }

    fn set_up(&mut self, warmup: Duration) -> Result<(), ProbeError> {
        let gpu = Gpu::open(0)?;
        let mut kernel = ComputeKernel::with_occupancy(&gpu, self.seed, self.occupancy)?;
        kernel.verify()?;
        let iters = kernel.iters_for_ms(self.step_ms)?;
        let mut state = ComputeState {
            kernel,
            iters,
            items: WholeItems::new(GIGA),
        };
        super::warm_up(warmup, || state.run_step())?;
        state.items = WholeItems::new(GIGA);
        self.state = Some(state);
        Ok(())
    }
}

impl ComputeState {
    fn run_step(&mut self) -> Result<u64, ProbeError> {
        self.kernel.launch(self.iters)?;
        self.kernel.gpu.synchronize()?;
        Ok(self.items.add(self.kernel.flop_per_launch(self.iters)))
    }
}

impl Workload for ComputeProbe {
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
        self.set_up(warmup).map_err(super::prepare_error(NAME))
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        super::throughput_step(
            NAME,
            self.state.as_mut(),
            &mut self.steps_done,
            ComputeState::run_step,
        )
    }

    fn memory_peak_bytes(&self) -> Option<u64> {
        self.state
            .as_ref()
            .map(|s| (s.kernel.out.len() * std::mem::size_of::<f32>()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_keep_the_fixed_point_near_one() {
        for seed in 0..100 {
            let (a, b) = coefficients(seed);
            assert!((0.5..0.999).contains(&a));
            let fixed_point = b / (1.0 - a);
            assert!(
                (0.5..2.0).contains(&fixed_point),
                "seed {seed}: {fixed_point}"
            );
        }
    }

    #[test]
    fn scaling_hits_the_target_and_rejects_a_zero_time() {
        assert_eq!(scale_iters(100, 2.0, 10.0).unwrap(), 500);
        assert_eq!(scale_iters(100, 1000.0, 0.001).unwrap(), 1);
        let err = scale_iters(100, 0.0, 10.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sizing `probe.compute`: a timed launch of 100 iterations took 0 ms"
        );
    }
}
