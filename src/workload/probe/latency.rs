//! `probe.latency`: a one-warp kernel launched at a fixed interval; each launch's latency
//! is the time from its intended launch time to its completion, seen from the host.
//!
//! Alone on a GPU that is a few microseconds. Next to a co-tenant it shows how long this
//! tenant waits for the GPU: under time-slicing, up to the co-tenant's time slice.
//!
//! Latency counts from the intended launch time, not the actual one: when a launch is
//! held up, the launches scheduled behind it are late too, and their wait is counted
//! (an open-loop schedule, so there is no coordinated omission). Items are launches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};

use super::kernels;
use super::measure::wait_until;
use super::{params, Gpu, ProbeError};
use crate::workload::{Params, Step, Workload, WorkloadError};

const NAME: &str = "probe.latency";
const WARP: u32 = 32;

/// The one-warp `touch` kernel and its 32-word output.
pub struct TouchKernel {
    gpu: Arc<Gpu>,
    function: CudaFunction,
    out: CudaSlice<u32>,
    launches: u32,
}

impl TouchKernel {
    pub fn new(gpu: &Arc<Gpu>) -> Result<Self, ProbeError> {
        let function = gpu.function(kernels::TOUCH)?;
        let out = gpu
            .stream()
            .alloc_zeros::<u32>(WARP as usize)
            .map_err(|e| gpu.driver_err("allocating the touch output", e))?;
        Ok(TouchKernel {
            gpu: gpu.clone(),
            function,
            out,
            launches: 0,
        })
    }

    fn launch(&mut self, value: u32) -> Result<(), ProbeError> {
        let stream = self.gpu.stream().clone();
        let mut launch = stream.launch_builder(&self.function);
        launch.arg(&mut self.out).arg(&value);
        let config = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (WARP, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches `touch(unsigned int*, unsigned int)`; one warp writes one word
        // each of the 32-word output.
        unsafe { launch.launch(config) }
            .map(|_| ())
            .map_err(|e| self.gpu.driver_err("launching touch", e))
    }

    /// Launches the kernel and waits for it; returns when it has completed.
    pub fn launch_and_wait(&mut self) -> Result<(), ProbeError> {
        self.launches = self.launches.wrapping_add(1);
        self.launch(self.launches)?;
        self.gpu.synchronize()
    }

    /// Launches once and checks all 32 words against the CPU reference.
    pub fn verify(&mut self) -> Result<(), ProbeError> {
        let value = 0x7e57_0000;
        self.launch(value)?;
        let got = self
            .gpu
            .stream()
            .clone_dtoh(&self.out)
            .map_err(|e| self.gpu.driver_err("reading the touch output", e))?;
        for (lane, got) in got.iter().enumerate() {
            let expected = kernels::touch_reference(lane as u32, value);
            if *got != expected {
                return Err(ProbeError::Mismatch {
                    kernel: kernels::TOUCH,
                    index: lane,
                    got: f64::from(*got),
                    expected: f64::from(expected),
                });
            }
        }
        Ok(())
    }
}

/// The open-loop launch schedule: intended times `interval` apart from the first launch.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    interval: Duration,
    next: Option<Instant>,
}

impl Schedule {
    pub(crate) fn new(interval: Duration) -> Self {
        Schedule {
            interval,
            next: None,
        }
    }

    /// The next intended launch time; the first is `now`, so the time between set-up and
    /// the first step is not counted as waiting.
    pub(crate) fn next_launch(&mut self, now: Instant) -> Instant {
        let intended = *self.next.get_or_insert(now);
        self.next = Some(intended + self.interval);
        intended
    }
}

/// The `probe.latency` workload: one launch per step, at its intended time.
pub struct LatencyProbe {
    interval: Duration,
    steps_done: u64,
    schedule: Schedule,
    kernel: Option<TouchKernel>,
}

impl LatencyProbe {
    pub fn build(params: &Params, _seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
        let interval_us = params::interval_us(NAME, params)?;
        let interval = crate::limits::duration_from_secs(interval_us / 1e6).map_err(|reason| {
            WorkloadError::ParamValue {
                workload: NAME.into(),
                param: "interval_us".into(),
                reason,
            }
        })?;
        Ok(Box::new(LatencyProbe {
            interval,
            steps_done: 0,
            schedule: Schedule::new(interval),
            kernel: None,
        }))
    }

    fn set_up(&mut self, warmup: Duration) -> Result<(), ProbeError> {
        let gpu = Gpu::open(0)?;
        let mut kernel = TouchKernel::new(&gpu)?;
        kernel.verify()?;
        let mut schedule = Schedule::new(self.interval);
        super::warm_up(warmup, || {
            wait_until(schedule.next_launch(Instant::now()));
            kernel.launch_and_wait()
        })?;
        self.kernel = Some(kernel);
        Ok(())
    }
}

impl Workload for LatencyProbe {
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
        self.set_up(warmup).map_err(super::prepare_error(NAME))
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        let step = self.steps_done;
        let step_err = super::step_error(NAME, step);
        let kernel = self
            .kernel
            .as_mut()
            .ok_or_else(|| step_err(ProbeError::NotPrepared { probe: NAME }))?;
        let intended = self.schedule.next_launch(Instant::now());
        wait_until(intended);
        kernel.launch_and_wait().map_err(step_err)?;
        let latency = intended.elapsed();
        self.steps_done += 1;
        Ok(Step {
            items: 1,
            latency_s: Some(latency.as_secs_f64()),
            failed: 0,
        })
    }

    fn memory_peak_bytes(&self) -> Option<u64> {
        self.kernel
            .as_ref()
            .map(|k| (k.out.len() * std::mem::size_of::<u32>()) as u64)
    }
}

/// Host-timed launch-to-completion latency of the `touch` kernel on an otherwise idle
/// stream, in microseconds: the median of `launches` back-to-back launches.
pub fn launch_latency_us(gpu: &Arc<Gpu>, launches: usize) -> Result<f64, ProbeError> {
    let mut kernel = TouchKernel::new(gpu)?;
    kernel.verify()?;
    for _ in 0..10 {
        kernel.launch_and_wait()?;
    }
    let times: Vec<f64> = (0..launches.max(1))
        .map(|_| {
            let start = Instant::now();
            kernel.launch_and_wait()?;
            Ok(start.elapsed().as_secs_f64() * 1e6)
        })
        .collect::<Result<_, ProbeError>>()?;
    Ok(super::measure::median(&times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_starts_now_and_keeps_its_interval_even_when_late() {
        let mut schedule = Schedule::new(Duration::from_millis(1));
        let t0 = Instant::now();
        assert_eq!(schedule.next_launch(t0), t0);
        // Called 5 ms late: the intended times stay on the grid, so the late launches
        // count their wait.
        let late = t0 + Duration::from_millis(5);
        assert_eq!(schedule.next_launch(late), t0 + Duration::from_millis(1));
        assert_eq!(schedule.next_launch(late), t0 + Duration::from_millis(2));
    }
}
