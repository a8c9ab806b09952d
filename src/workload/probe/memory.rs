//! `probe.memory`: a bandwidth-bound copy kernel (16-byte loads and stores, grid-stride,
//! several loads in flight per thread) over buffers far larger than the L2 cache, with its
//! CPU check and the driver's device-to-device copy it is measured against.
//!
//! Bytes moved count each byte read and each byte written, as NVIDIA's bandwidth figures
//! do, so a copy of N bytes moves 2N. Items are GB (10^9 bytes), so the tenant's
//! throughput in items/s reads as GB/s.

use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

use super::items::{WholeItems, GIGA};
use super::kernels::{self, BLOCK_THREADS};
use super::measure::median;
use super::params::Occupancy;
use super::{params, Gpu, ProbeError};
use crate::workload::{Params, Step, Workload, WorkloadError};

const NAME: &str = "probe.memory";

/// The copy kernel over a source and a destination buffer of the same size.
pub struct CopyKernel {
    gpu: Arc<Gpu>,
    copy: CudaFunction,
    src: CudaSlice<f32>,
    dst: CudaSlice<f32>,
    grid_blocks: u32,
}

impl CopyKernel {
    /// Allocates two buffers of `buffer_bytes` each (rounded down to whole floats) and
    /// fills them with distinct non-zero patterns.
    pub fn new(gpu: &Arc<Gpu>, buffer_bytes: u64) -> Result<Self, ProbeError> {
        Self::with_occupancy(gpu, buffer_bytes, Occupancy::Kernel)
    }

    /// The same with the launch shape `occupancy` asks for: the blocks `copy_f4` fits, or
    /// every thread slot of every SM with `copy_f4_full`.
    pub fn with_occupancy(
        gpu: &Arc<Gpu>,
        buffer_bytes: u64,
        occupancy: Occupancy,
    ) -> Result<Self, ProbeError> {
        let (copy, grid_blocks) = match occupancy {
            Occupancy::Kernel => {
                let copy = gpu.function(kernels::COPY_F4)?;
                let blocks = gpu.resident_blocks(&copy)?;
                (copy, blocks)
            }
            // `hold` is refused when the parameters are read (`params::copy_occupancy`).
            Occupancy::Full | Occupancy::Hold => {
                let copy = gpu.function(kernels::COPY_F4_FULL)?;
                let blocks = gpu.full_blocks(&copy, kernels::COPY_F4_FULL)?;
                (copy, blocks)
            }
        };
        let n = (buffer_bytes / 4).max(1) as usize;
        let mut src = alloc(gpu, n)?;
        let mut dst = alloc(gpu, n)?;
        fill(gpu, &mut src, 0x5eed_0001)?;
        fill(gpu, &mut dst, 0x5eed_0002)?;
        gpu.synchronize()?;
        Ok(CopyKernel {
            gpu: gpu.clone(),
            copy,
            src,
            dst,
            grid_blocks,
        })
    }

    /// Bytes one copy moves: each byte of the source read once, each of the destination
    /// written once.
    pub fn bytes_per_copy(&self) -> u64 {
        2 * (self.src.len() * std::mem::size_of::<f32>()) as u64
    }

    /// Device memory the two buffers hold, in bytes.
    pub fn allocated_bytes(&self) -> u64 {
        ((self.src.len() + self.dst.len()) * std::mem::size_of::<f32>()) as u64
    }

    /// Enqueues one copy of the source into the destination with the probe's kernel.
    pub fn launch(&mut self) -> Result<(), ProbeError> {
        launch_copy(
            &self.gpu,
            &self.copy,
            &self.src,
            &mut self.dst,
            self.grid_blocks,
        )
    }

    /// Enqueues the same copy through the driver (cuMemcpyDtoDAsync), the reference the
    /// kernel's bandwidth is judged against.
    pub fn launch_driver_copy(&mut self) -> Result<(), ProbeError> {
        self.gpu
            .stream()
            .memcpy_dtod(&self.src, &mut self.dst)
            .map_err(|e| self.gpu.driver_err("copying device to device", e))
    }

    /// Median device time of `reps` kernel copies, in milliseconds, after two untimed ones.
    pub fn time_kernel_ms(&mut self, reps: usize) -> Result<f64, ProbeError> {
        self.time_median_ms(reps, Self::launch)
    }

    /// Median device time of `reps` driver copies, in milliseconds, after two untimed ones.
    pub fn time_driver_copy_ms(&mut self, reps: usize) -> Result<f64, ProbeError> {
        self.time_median_ms(reps, Self::launch_driver_copy)
    }

    fn time_median_ms(
        &mut self,
        reps: usize,
        mut copy: impl FnMut(&mut Self) -> Result<(), ProbeError>,
    ) -> Result<f64, ProbeError> {
        copy(self)?;
        copy(self)?;
        let gpu = self.gpu.clone();
        let times: Vec<f64> = (0..reps.max(1))
            .map(|_| gpu.time_ms(|| copy(self)))
            .collect::<Result<_, _>>()?;
        Ok(median(&times))
    }

    /// Checks the kernel on a small odd-sized buffer that exercises its unrolled loop, its
    /// remainder loop and its tail, and checks that it writes nothing past the end. Also
    /// checks the fill pattern against the CPU.
    pub fn verify(&self) -> Result<(), ProbeError> {
        let gpu = &self.gpu;
        let grid_blocks = 2;
        let stride = (grid_blocks * BLOCK_THREADS) as usize;
        let n = 4 * (9 * stride + 5) + 3;
        let guard = 64;
        let seed = 0x00dd_ba11;
        let mut src = alloc(gpu, n)?;
        fill(gpu, &mut src, seed)?;
        let poison = vec![f32::NAN; n + guard];
        let mut dst = gpu
            .stream()
            .clone_htod(&poison)
            .map_err(|e| gpu.driver_err("poisoning the copy destination", e))?;
        launch_copy(gpu, &self.copy, &src, &mut dst, grid_blocks)?;
        let src_host = gpu
            .stream()
            .clone_dtoh(&src)
            .map_err(|e| gpu.driver_err("reading the copy source", e))?;
        let dst_host = gpu
            .stream()
            .clone_dtoh(&dst)
            .map_err(|e| gpu.driver_err("reading the copy destination", e))?;
        for (i, got) in src_host.iter().enumerate() {
            let expected = kernels::fill_pattern_reference(i as u64, seed);
            if got.to_bits() != expected.to_bits() {
                return Err(mismatch(kernels::FILL_PATTERN, i, *got, expected));
            }
        }
        for (i, got) in dst_host.iter().enumerate() {
            let expected = src_host.get(i).copied().unwrap_or(f32::NAN);
            if got.to_bits() != expected.to_bits() && !(got.is_nan() && expected.is_nan()) {
                return Err(mismatch(kernels::COPY_F4, i, *got, expected));
            }
        }
        Ok(())
    }
}

fn mismatch(kernel: &'static str, index: usize, got: f32, expected: f32) -> ProbeError {
    ProbeError::Mismatch {
        kernel,
        index,
        got: f64::from(got),
        expected: f64::from(expected),
    }
}

fn alloc(gpu: &Gpu, n: usize) -> Result<CudaSlice<f32>, ProbeError> {
    // SAFETY: every allocation is written by `fill` or a copy before it is read.
    unsafe { gpu.stream().alloc::<f32>(n) }
        .map_err(|e| gpu.driver_err(format!("allocating {} bytes", n * 4), e))
}

fn fill(gpu: &Gpu, buffer: &mut CudaSlice<f32>, seed: u32) -> Result<(), ProbeError> {
    let function = gpu.function(kernels::FILL_PATTERN)?;
    let grid_blocks = gpu.resident_blocks(&function)?;
    let n = buffer.len() as u64;
    let stream = gpu.stream().clone();
    let mut launch = stream.launch_builder(&function);
    launch.arg(buffer).arg(&n).arg(&seed);
    let config = LaunchConfig {
        grid_dim: (grid_blocks, 1, 1),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: matches `fill_pattern(float*, unsigned long long n, unsigned int)`, and `n`
    // is the buffer's length in floats.
    unsafe { launch.launch(config) }
        .map(|_| ())
        .map_err(|e| gpu.driver_err("launching fill_pattern", e))
}

fn launch_copy(
    gpu: &Gpu,
    copy: &CudaFunction,
    src: &CudaSlice<f32>,
    dst: &mut CudaSlice<f32>,
    grid_blocks: u32,
) -> Result<(), ProbeError> {
    let n = src.len().min(dst.len()) as u64;
    let stream = gpu.stream().clone();
    let mut launch = stream.launch_builder(copy);
    launch.arg(src).arg(dst).arg(&n);
    let config = LaunchConfig {
        grid_dim: (grid_blocks, 1, 1),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: matches `copy_f4(const float*, float*, unsigned long long n)`; `n` is at most
    // the length of either buffer, and cudarc allocations are 256-byte aligned, as the
    // kernel's 16-byte accesses need.
    unsafe { launch.launch(config) }
        .map(|_| ())
        .map_err(|e| gpu.driver_err("launching copy_f4", e))
}

/// Bandwidth figures of the copy kernel and of the driver's copy on the same buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyFigures {
    /// The probe kernel's bandwidth, bytes read plus bytes written, in GB/s.
    pub kernel_gbps: f64,
    /// cuMemcpyDtoD's bandwidth on the same buffers, counted the same way, in GB/s.
    pub driver_copy_gbps: f64,
}

/// Measures the copy kernel and the driver's device-to-device copy on the same two
/// buffers of `buffer_bytes` each, after checking the kernel against the CPU.
pub fn copy_figures(gpu: &Arc<Gpu>, buffer_bytes: u64) -> Result<CopyFigures, ProbeError> {
    let mut kernel = CopyKernel::new(gpu, buffer_bytes)?;
    kernel.verify()?;
    let bytes = kernel.bytes_per_copy() as f64;
    let reps = 15;
    let kernel_ms = kernel.time_kernel_ms(reps)?;
    let driver_ms = kernel.time_driver_copy_ms(reps)?;
    Ok(CopyFigures {
        kernel_gbps: bytes / (kernel_ms * 1e-3) / 1e9,
        driver_copy_gbps: bytes / (driver_ms * 1e-3) / 1e9,
    })
}

/// The copy kernel's bandwidth in GB/s (bytes read plus written) on `buffer_bytes` buffers.
pub fn memory_gbps(gpu: &Arc<Gpu>, buffer_bytes: u64) -> Result<f64, ProbeError> {
    copy_figures(gpu, buffer_bytes).map(|f| f.kernel_gbps)
}

/// cuMemcpyDtoD's bandwidth in GB/s (bytes read plus written) on `buffer_bytes` buffers.
pub fn d2d_copy_gbps(gpu: &Arc<Gpu>, buffer_bytes: u64) -> Result<f64, ProbeError> {
    let mut kernel = CopyKernel::new(gpu, buffer_bytes)?;
    let ms = kernel.time_driver_copy_ms(15)?;
    Ok(kernel.bytes_per_copy() as f64 / (ms * 1e-3) / 1e9)
}

/// The `probe.memory` workload: as many back-to-back copies per step as fill `step_ms`.
pub struct MemoryProbe {
    step_ms: f64,
    buffer_bytes: u64,
    occupancy: Occupancy,
    steps_done: u64,
    state: Option<MemoryState>,
}

struct MemoryState {
    kernel: CopyKernel,
    copies_per_step: u32,
    items: WholeItems,
}

impl MemoryProbe {
    pub fn build(params: &Params, _seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
        Ok(Box::new(MemoryProbe {
            step_ms: params::step_ms(NAME, params)?,
            buffer_bytes: params::buffer_bytes(NAME, params)?,
            occupancy: params::copy_occupancy(NAME, params)?,
            steps_done: 0,
            state: None,
        }))
    }

    fn set_up(&mut self, warmup: Duration) -> Result<(), ProbeError> {
        let gpu = Gpu::open(0)?;
        let mut kernel = CopyKernel::with_occupancy(&gpu, self.buffer_bytes, self.occupancy)?;
        kernel.verify()?;
        let copy_ms = kernel.time_kernel_ms(3)?;
        if copy_ms.is_nan() || copy_ms <= 0.0 {
            return Err(ProbeError::Sizing {
                probe: NAME,
                reason: format!("a timed copy took {copy_ms} ms"),
            });
        }
        let copies_per_step = (self.step_ms / copy_ms).round().clamp(1.0, 1e6) as u32;
        let mut state = MemoryState {
            kernel,
            copies_per_step,
            items: WholeItems::new(GIGA),
        };
        super::warm_up(warmup, || state.run_step())?;
        state.items = WholeItems::new(GIGA);
        self.state = Some(state);
        Ok(())
    }
}

impl MemoryState {
    fn run_step(&mut self) -> Result<u64, ProbeError> {
        for _ in 0..self.copies_per_step {
            self.kernel.launch()?;
        }
        self.kernel.gpu.synchronize()?;
        let bytes = u128::from(self.kernel.bytes_per_copy()) * u128::from(self.copies_per_step);
        Ok(self.items.add(bytes))
    }
}

impl Workload for MemoryProbe {
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
        self.set_up(warmup).map_err(super::prepare_error(NAME))
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        super::throughput_step(
            NAME,
            self.state.as_mut(),
            &mut self.steps_done,
            MemoryState::run_step,
        )
    }

    fn memory_peak_bytes(&self) -> Option<u64> {
        self.state.as_ref().map(|s| s.kernel.allocated_bytes())
    }
}
