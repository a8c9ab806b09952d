//! The probes' handle on one GPU: its CUDA context and stream, the facts read off the
//! device (SM count, compute capability, clock), the compiled kernel module, and event
//! timing. Opening it checks that the driver and NVRTC libraries can be loaded, so a host
//! without them gets an error, not a panic inside cudarc.

use std::sync::{Arc, OnceLock};

use cudarc::driver::sys::{CUdevice_attribute, CUevent_flags};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DriverError};
use cudarc::nvrtc::CompileOptions;

use super::kernels;
use super::ProbeError;

/// True when the CUDA driver library loads and reports at least one GPU. Benches and
/// tools use it to skip GPU work on machines without one.
pub fn gpu_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names; no symbol is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return false;
    }
    cudarc::driver::result::init().is_ok() && CudaContext::device_count().is_ok_and(|n| n > 0)
}

/// One GPU as the probes use it: the primary context and its default stream.
///
/// The probes use only the default stream, so cudarc keeps its per-buffer event tracking
/// off (it turns on with a second stream) and a launch costs one driver call.
pub struct Gpu {
    index: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    sm_count: u32,
    max_threads_per_sm: u32,
    compute_capability: (i32, i32),
    module: OnceLock<Arc<CudaModule>>,
}

impl Gpu {
    /// Opens GPU `index` (CUDA's ordering) after checking that the driver and NVRTC
    /// libraries are present. Shared, because each probe kernel keeps a handle.
    pub fn open(index: usize) -> Result<Arc<Self>, ProbeError> {
        // SAFETY: both calls only try to dlopen the libraries; no symbol is called.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(ProbeError::NoDriver);
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(ProbeError::NoNvrtc);
        }
        let open_err = |source| ProbeError::Open {
            gpu_index: index,
            source,
        };
        let ctx = CudaContext::new(index).map_err(open_err)?;
        let sm_count = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(open_err)?;
        let max_threads_per_sm = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR)
            .map_err(open_err)?;
        let compute_capability = ctx.compute_capability().map_err(open_err)?;
        let stream = ctx.default_stream();
        Ok(Arc::new(Gpu {
            index,
            ctx,
            stream,
            sm_count: sm_count.max(1) as u32,
            max_threads_per_sm: max_threads_per_sm.max(kernels::BLOCK_THREADS as i32) as u32,
            compute_capability,
            module: OnceLock::new(),
        }))
    }

    /// The GPU's index in CUDA's ordering.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Streaming multiprocessors this context can use.
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }

    /// Compute capability (major, minor), for example (9, 0) for an H100 or H200.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.compute_capability
    }

    /// The device's name as the driver reports it.
    pub fn name(&self) -> Result<String, ProbeError> {
        self.ctx
            .name()
            .map_err(|e| self.driver_err("reading the device name", e))
    }

    /// The SM clock the device can reach, in MHz: the driver's clock-rate attribute, or,
    /// where the driver no longer answers it (CUDA 13 deprecates it), NVML's maximum SM
    /// clock of the same device found by its PCI address.
    pub fn max_sm_clock_mhz(&self) -> Result<u32, ProbeError> {
        match self
            .ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
        {
            Ok(khz) if khz > 0 => Ok(khz as u32 / 1000),
            _ => self.nvml_max_sm_clock_mhz(),
        }
    }

    fn nvml_max_sm_clock_mhz(&self) -> Result<u32, ProbeError> {
        let attr = |a| {
            self.ctx
                .attribute(a)
                .map_err(|e| self.driver_err("reading the PCI address", e))
        };
        let pci_bus_id = format!(
            "{:08x}:{:02x}:{:02x}.0",
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)?,
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)?,
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)?,
        );
        let clock = nvml_wrapper::Nvml::init().and_then(|nvml| {
            nvml.device_by_pci_bus_id(pci_bus_id.as_str())?
                .max_clock_info(nvml_wrapper::enum_wrappers::device::Clock::SM)
        });
        clock.map_err(|e| ProbeError::Clock {
            gpu_index: self.index,
            reason: format!("the driver has no clock-rate attribute and NVML says: {e}"),
        })
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(crate) fn driver_err(&self, action: impl Into<String>, source: DriverError) -> ProbeError {
        ProbeError::Driver {
            action: action.into(),
            gpu_index: self.index,
            source,
        }
    }

    /// The compiled probe kernel `name`. The module is compiled once per `Gpu`, for this
    /// device's own architecture (`compute_XY` PTX, which the driver turns into machine
    /// code for the exact chip when it loads the module).
    pub(crate) fn function(&self, name: &str) -> Result<CudaFunction, ProbeError> {
        let module = match self.module.get() {
            Some(module) => module.clone(),
            None => {
                let module = self.compile()?;
                // Another thread may have won the race; either module is the same code.
                self.module.get_or_init(|| module).clone()
            }
        };
        module
            .load_function(name)
            .map_err(|e| self.driver_err(format!("loading kernel `{name}`"), e))
    }

    fn compile(&self) -> Result<Arc<CudaModule>, ProbeError> {
        let (major, minor) = self.compute_capability;
        let arch = format!("compute_{major}{minor}");
        let opts = CompileOptions {
            options: vec![
                format!("--gpu-architecture={arch}"),
                format!(
                    "-D{}={}",
                    kernels::FULL_BLOCKS_MACRO,
                    self.full_blocks_per_sm()
                ),
            ],
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(kernels::SOURCE, opts).map_err(|e| {
            let log = match &e {
                cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                    log.to_string_lossy().into_owned()
                }
                other => other.to_string(),
            };
            ProbeError::Compile {
                arch: arch.clone(),
                log,
            }
        })?;
        self.ctx
            .load_module(ptx)
            .map_err(|e| self.driver_err("loading the compiled probe module", e))
    }

    /// Runs `work` (which enqueues on this GPU's stream) between two timing events and
    /// returns the device time between them, in milliseconds. Waits for completion.
    pub fn time_ms(
        &self,
        mut work: impl FnMut() -> Result<(), ProbeError>,
    ) -> Result<f64, ProbeError> {
        let record = |what| {
            self.stream
                .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| self.driver_err(format!("recording the {what} timing event"), e))
        };
        let start = record("start")?;
        work()?;
        let end = record("end")?;
        let ms = start
            .elapsed_ms(&end)
            .map_err(|e| self.driver_err("reading a timing event", e))?;
        Ok(f64::from(ms))
    }

    /// Waits for everything enqueued on this GPU's stream, surfacing launch errors.
    pub fn synchronize(&self) -> Result<(), ProbeError> {
        self.stream
            .synchronize()
            .map_err(|e| self.driver_err("waiting for the stream", e))
    }

    /// Blocks a persistent grid-stride kernel needs to fill every SM with resident warps.
    pub(crate) fn resident_blocks(&self, function: &CudaFunction) -> Result<u32, ProbeError> {
        Ok(self.sm_count * self.blocks_per_sm(function)?.max(1))
    }

    fn blocks_per_sm(&self, function: &CudaFunction) -> Result<u32, ProbeError> {
        function
            .occupancy_max_active_blocks_per_multiprocessor(kernels::BLOCK_THREADS, 0, None)
            .map_err(|e| self.driver_err("querying kernel occupancy", e))
    }

    /// Blocks of [`kernels::BLOCK_THREADS`] that fill every thread slot of one SM.
    pub(crate) fn full_blocks_per_sm(&self) -> u32 {
        (self.max_threads_per_sm / kernels::BLOCK_THREADS).max(1)
    }

    /// The grid that holds every thread slot of every SM with `function` (a `_full`
    /// kernel), or an error saying how far its occupancy falls short.
    pub(crate) fn full_blocks(
        &self,
        function: &CudaFunction,
        kernel: &'static str,
    ) -> Result<u32, ProbeError> {
        let fits = self.blocks_per_sm(function)?;
        let needed = self.full_blocks_per_sm();
        if fits < needed {
            return Err(ProbeError::Occupancy {
                kernel,
                fits,
                needed,
                max_threads_per_sm: self.max_threads_per_sm,
            });
        }
        Ok(self.sm_count * needed)
    }
}

/// FP32 lanes per SM by compute capability, from NVIDIA's CUDA C++ Programming Guide
/// ("Arithmetic Instructions" throughput table): 64 on 6.0, 7.x and 8.0; 128 on 6.1, 6.2,
/// 8.6, 8.7, 8.9, 9.0 and later.
pub fn fp32_lanes_per_sm((major, minor): (i32, i32)) -> Option<u32> {
    match (major, minor) {
        (6, 0) | (7, _) | (8, 0) => Some(64),
        (6, _) | (8, _) | (9, _) | (10, _) | (11, _) | (12, _) => Some(128),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopper_has_128_fp32_lanes_per_sm_and_ampere_a100_64() {
        assert_eq!(fp32_lanes_per_sm((9, 0)), Some(128));
        assert_eq!(fp32_lanes_per_sm((8, 0)), Some(64));
        assert_eq!(fp32_lanes_per_sm((8, 6)), Some(128));
        assert_eq!(fp32_lanes_per_sm((5, 2)), None);
    }
}
