//! `interactive.notebook`: a person working in a notebook. A session alternates think
//! time (the person reading and typing; the GPU sits idle for this tenant) with a burst
//! of cells, each a short piece of GPU work the person waits for.
//!
//! One step is one think followed by one burst of `cells_per_burst` cells. The figure of
//! merit is the person's wait: [`Step::latency_s`] runs from the moment the burst is
//! submitted until its last cell's work has completed (synchronized), so an SLO on it
//! reads as "how long did I wait after pressing Run". Think time is excluded from it.
//!
//! Think times are exponential with mean `think_ms` (inverse-transform sampling from a
//! ChaCha8 stream seeded with the tenant's seed): the memoryless choice, the same model
//! as Poisson arrivals, so two runs with one seed see the same sequence of pauses.
//!
//! A cell on the GPU is one launch of the probes' FMA-bound kernel
//! ([`super::probe::ComputeKernel`]), sized during `prepare` to take `cell_ms` of device
//! time on the GPU as it is then. With `device = "cpu"` a cell is a CPU spin of
//! `cell_ms` instead, for tests and CI, and reports label its figures CPU data.
//!
//! It knows nothing of other tenants; it does not decide what counts as a good wait
//! (the scenario's SLO does).

use crate::limits::workload as limits;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ParamInfo, ParamKind, Params, Step, Workload, WorkloadError};

const NAME: &str = "interactive.notebook";

pub const PARAMS: &[ParamInfo] = &[
    ParamInfo {
        name: "think_ms",
        kind: ParamKind::Float(limits::MILLIS),
        default: "2000.0",
        doc: "mean think time before each burst, in milliseconds; exponential, from the \
              tenant's seed; 0 runs bursts back to back",
    },
    ParamInfo {
        name: "cell_ms",
        kind: ParamKind::Float(limits::MILLIS_POSITIVE),
        default: "50.0",
        doc: "device time of one cell, in milliseconds; the launch is fitted to it during \
              warm-up (device = \"cpu\": CPU time spun)",
    },
    ParamInfo {
        name: "cells_per_burst",
        kind: ParamKind::Int(limits::CELLS_PER_BURST),
        default: "1",
        doc: "cells run back to back after each think; the latency is the whole burst's",
    },
    ParamInfo {
        name: "device",
        kind: ParamKind::Choice(&["cuda", "cpu"]),
        default: "\"cuda\"",
        doc: "cuda (the first visible GPU; needs the cuda feature) or cpu (a spin, for tests)",
    },
];

/// Exponentially distributed think times with a given mean, from a seeded stream.
#[derive(Debug, Clone)]
pub(crate) struct ThinkTime {
    mean_s: f64,
    rng: ChaCha8Rng,
}

impl ThinkTime {
    pub(crate) fn new(mean_ms: f64, seed: u64) -> Self {
        ThinkTime {
            mean_s: mean_ms / 1e3,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next think time: `-mean ln(1 - u)` for `u` uniform in [0, 1), which is the
    /// inverse of the exponential CDF (and finite, since `1 - u > 0`).
    pub(crate) fn next(&mut self) -> Duration {
        if self.mean_s == 0.0 {
            return Duration::ZERO;
        }
        let u: f64 = self.rng.random();
        Duration::from_secs_f64(-self.mean_s * (1.0 - u).ln())
    }
}

/// Where the cells run.
enum Cells {
    Cpu,
    #[cfg(feature = "cuda")]
    Gpu(Option<gpu::GpuCells>),
}

pub struct Notebook {
    think: ThinkTime,
    cell_ms: f64,
    cells_per_burst: u64,
    cells: Cells,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    seed: u64,
    steps_done: u64,
}

/// Builds the workload; the registry has checked parameter names and types.
pub fn build(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    let value_err = |param: &str, reason: String| WorkloadError::ParamValue {
        workload: NAME.into(),
        param: param.into(),
        reason,
    };
    let think_ms = params.f64_or("think_ms", 2000.0);
    if !(think_ms.is_finite() && think_ms >= 0.0) {
        return Err(value_err(
            "think_ms",
            format!("must be a non-negative number of milliseconds, got {think_ms}"),
        ));
    }
    let cell_ms = params.f64_or("cell_ms", 50.0);
    if !(cell_ms.is_finite() && cell_ms > 0.0) {
        return Err(value_err(
            "cell_ms",
            format!("must be a positive number of milliseconds, got {cell_ms}"),
        ));
    }
    let cells_per_burst = params.i64_or("cells_per_burst", 1);
    if cells_per_burst < 1 {
        return Err(value_err(
            "cells_per_burst",
            format!("must be a positive integer, got {cells_per_burst}"),
        ));
    }
    let cells = match params.str_or("device", "cuda") {
        "cpu" => Cells::Cpu,
        #[cfg(feature = "cuda")]
        _ => Cells::Gpu(None),
        #[cfg(not(feature = "cuda"))]
        _ => {
            return Err(WorkloadError::Unavailable {
                name: NAME.into(),
                reason: "built without the cuda feature (device = \"cpu\" runs without it)".into(),
            })
        }
    };
    Ok(Box::new(Notebook {
        // A stream of its own, apart from the one the GPU kernel's coefficients come
        // from, so the two never share draws.
        think: ThinkTime::new(think_ms, seed ^ 0x6e6f_7465_626f_6f6b),
        cell_ms,
        cells_per_burst: cells_per_burst as u64,
        cells,
        seed,
        steps_done: 0,
    }))
}

impl Notebook {
    /// Runs one burst of cells and returns once the last has completed.
    fn run_burst(&mut self) -> Result<(), String> {
        for _ in 0..self.cells_per_burst {
            match &mut self.cells {
                Cells::Cpu => {
                    super::cpu_synthetic::spin_for(Duration::from_secs_f64(self.cell_ms / 1e3))
                }
                #[cfg(feature = "cuda")]
                Cells::Gpu(cells) => cells
                    .as_mut()
                    .ok_or_else(|| format!("running `{NAME}` before its prepare"))?
                    .run_cell()
                    .map_err(|e| e.to_string())?,
            }
        }
        Ok(())
    }
}

impl Workload for Notebook {
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
        #[cfg(feature = "cuda")]
        if let Cells::Gpu(cells) = &mut self.cells {
            let ready = gpu::GpuCells::new(self.seed, self.cell_ms).map_err(|e| {
                WorkloadError::Prepare {
                    workload: NAME.into(),
                    reason: e.to_string(),
                }
            })?;
            *cells = Some(ready);
        }
        // Warm-up runs cells without think time: it is there to bring clocks up and
        // page code in, which idle pauses would undo.
        let start = Instant::now();
        while start.elapsed() < warmup {
            self.run_burst().map_err(|reason| WorkloadError::Prepare {
                workload: NAME.into(),
                reason,
            })?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        // Sleeping, not spinning: a thinking person leaves the GPU and the CPU alone.
        std::thread::sleep(self.think.next());
        let submitted = Instant::now();
        self.run_burst().map_err(|reason| WorkloadError::Step {
            workload: NAME.into(),
            step: self.steps_done,
            reason,
        })?;
        let latency_s = submitted.elapsed().as_secs_f64();
        self.steps_done += 1;
        Ok(Step {
            items: self.cells_per_burst,
            latency_s: Some(latency_s),
            failed: 0,
        })
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    //! A cell on the GPU: one launch of the probes' FMA kernel, waited for.

    use std::sync::Arc;

    use crate::workload::probe::{ComputeKernel, Gpu, ProbeError};

    pub(super) struct GpuCells {
        gpu: Arc<Gpu>,
        kernel: ComputeKernel,
        iters: u32,
    }

    impl GpuCells {
        /// Opens the first visible GPU, checks the kernel against the CPU reference and
        /// sizes one launch to `cell_ms` of device time.
        pub(super) fn new(seed: u64, cell_ms: f64) -> Result<Self, ProbeError> {
            let gpu = Gpu::open(0)?;
            let mut kernel = ComputeKernel::new(&gpu, seed)?;
            kernel.verify()?;
            let iters = kernel.iters_for_ms(cell_ms)?;
            Ok(GpuCells { gpu, kernel, iters })
        }

        /// Launches one cell and waits for it, as a notebook waits to show a cell's output.
        pub(super) fn run_cell(&mut self) -> Result<(), ProbeError> {
            self.kernel.launch(self.iters)?;
            self.gpu.synchronize()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{find, Device, ParamValue};

    fn params(pairs: &[(&str, ParamValue)]) -> Params {
        Params::from_pairs(pairs)
    }

    fn build_err(pairs: &[(&str, ParamValue)]) -> String {
        crate::workload::build(NAME, &params(pairs), 1)
            .err()
            .unwrap()
            .to_string()
    }

    #[test]
    fn think_times_repeat_for_a_seed_and_differ_across_seeds() {
        let draws = |seed| {
            let mut t = ThinkTime::new(100.0, seed);
            (0..20).map(|_| t.next()).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn think_times_are_exponential_with_the_given_mean() {
        let mut t = ThinkTime::new(2000.0, 11);
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| t.next().as_secs_f64() * 1e3).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        // The standard error of the mean is 2000 / sqrt(20000), about 14 ms; 5% is
        // seven standard errors.
        assert!((mean - 2000.0).abs() < 100.0, "mean {mean} ms");
        // An exponential has P(X > mean) = 1/e, about 0.368.
        let above = draws.iter().filter(|&&d| d > 2000.0).count() as f64 / n as f64;
        assert!(
            (above - (-1.0f64).exp()).abs() < 0.02,
            "share above mean {above}"
        );
        assert!(draws.iter().all(|&d| d >= 0.0 && d.is_finite()));
    }

    #[test]
    fn zero_think_time_means_no_pause() {
        let mut t = ThinkTime::new(0.0, 1);
        assert_eq!(t.next(), Duration::ZERO);
    }

    #[test]
    fn a_cpu_step_thinks_then_reports_the_cell_as_latency() {
        let mut w = crate::workload::build(
            NAME,
            &params(&[
                ("device", ParamValue::Str("cpu".into())),
                ("think_ms", ParamValue::Float(20.0)),
                ("cell_ms", ParamValue::Float(10.0)),
            ]),
            5,
        )
        .unwrap();
        w.prepare(Duration::ZERO).unwrap();
        let expected_think = ThinkTime::new(20.0, 5 ^ 0x6e6f_7465_626f_6f6b).next();
        let start = Instant::now();
        let step = w.step().unwrap();
        let wall = start.elapsed();
        assert_eq!(step.items, 1);
        let latency_s = step.latency_s.unwrap();
        // Generous upper bounds: the development machine is shared and loaded.
        assert!((0.010..0.5).contains(&latency_s), "latency {latency_s} s");
        let floor = expected_think + Duration::from_millis(10);
        assert!(
            wall >= floor,
            "step {wall:?} shorter than think + cell {floor:?}"
        );
        assert!(wall < floor + Duration::from_millis(500), "step {wall:?}");
    }

    #[test]
    fn a_burst_counts_its_cells_and_waits_for_all_of_them() {
        let mut w = crate::workload::build(
            NAME,
            &params(&[
                ("device", ParamValue::Str("cpu".into())),
                ("think_ms", ParamValue::Int(0)),
                ("cell_ms", ParamValue::Float(3.0)),
                ("cells_per_burst", ParamValue::Int(3)),
            ]),
            5,
        )
        .unwrap();
        let step = w.step().unwrap();
        assert_eq!(step.items, 3);
        assert!(step.latency_s.unwrap() >= 0.009);
    }

    #[test]
    fn bad_values_are_rejected_with_the_parameter_named() {
        assert_eq!(
            build_err(&[("think_ms", ParamValue::Float(-1.0))]),
            "reading parameter `think_ms` of `interactive.notebook`: must be a number of \
             milliseconds from 0 to 3600000, got -1"
        );
        assert_eq!(
            build_err(&[("cell_ms", ParamValue::Int(0))]),
            "reading parameter `cell_ms` of `interactive.notebook`: must be a number of \
             milliseconds above 0 and at most 3600000, got 0"
        );
        assert_eq!(
            build_err(&[("cells_per_burst", ParamValue::Int(0))]),
            "reading parameter `cells_per_burst` of `interactive.notebook`: must be an integer \
             from 1 to 1000000, got 0"
        );
        assert_eq!(
            build_err(&[("device", ParamValue::Str("tpu".into()))]),
            "reading parameter `device` of `interactive.notebook`: \"tpu\" is not one of cuda, cpu"
        );
    }

    #[test]
    fn registered_as_gpu_cells_and_labelled_cpu_when_run_on_the_cpu() {
        let info = find(NAME).unwrap();
        assert_eq!(info.item, "cells");
        assert_eq!(info.device, Device::Gpu);
        let cpu = params(&[("device", ParamValue::Str("cpu".into()))]);
        assert_eq!(info.device_for(&cpu), Device::Cpu);
        assert_eq!(info.device_for(&Params::default()), Device::Gpu);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_cuda_the_gpu_device_says_why_it_cannot_run() {
        assert_eq!(
            build_err(&[]),
            "using workload `interactive.notebook`: built without the cuda feature \
             (device = \"cpu\" runs without it)"
        );
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn with_cuda_building_touches_no_gpu_and_stepping_before_prepare_is_an_error() {
        let mut w =
            crate::workload::build(NAME, &params(&[("think_ms", ParamValue::Int(0))]), 1).unwrap();
        assert_eq!(
            w.step().unwrap_err().to_string(),
            "running step 0 of `interactive.notebook`: running `interactive.notebook` before \
             its prepare"
        );
    }
}
