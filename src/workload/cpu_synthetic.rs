//! `cpu.synthetic`: a deterministic CPU step, the fixture that lets the whole pipeline
//! run (and be snapshotted) on a machine without a GPU. It is never presented as GPU data.
//!
//! Its `fault` parameter makes a worker crash, hang or exit early on purpose, so the
//! runner's failure handling is tested through the real process boundary.

use crate::limits::workload as limits;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ParamInfo, ParamKind, Params, Step, Workload, WorkloadError};

/// How the fixture misbehaves after `fault_after_steps` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Abort the process (SIGABRT), as a segfaulting CUDA kernel would take it down.
    Crash,
    /// Stop making progress forever, as a deadlocked step would.
    Hang,
    /// Exit with status 3 in the middle of the window.
    Exit,
    /// Report a step error through the protocol and exit.
    Error,
}

pub struct CpuSynthetic {
    step: Duration,
    jitter: Duration,
    items_per_step: u64,
    setup: Duration,
    fault: Fault,
    fault_after_steps: u64,
    steps_done: u64,
    rng: ChaCha8Rng,
}

impl CpuSynthetic {
    pub const PARAMS: &'static [ParamInfo] = &[
        ParamInfo {
            name: "step_ms",
            kind: ParamKind::Float(limits::MILLIS),
            default: "1.0",
            doc: "CPU time each step spins, in milliseconds",
        },
        ParamInfo {
            name: "jitter_ms",
            kind: ParamKind::Float(limits::MILLIS),
            default: "0.0",
            doc: "uniform random extra time per step, 0..jitter_ms, from the tenant's seed",
        },
        ParamInfo {
            name: "items_per_step",
            kind: ParamKind::Int(limits::ITEMS_PER_STEP),
            default: "1",
            doc: "items counted per step",
        },
        ParamInfo {
            name: "setup_ms",
            kind: ParamKind::Float(limits::MILLIS),
            default: "0.0",
            doc: "time spent before Ready, in milliseconds (simulates model loading)",
        },
        ParamInfo {
            name: "fault",
            kind: ParamKind::Choice(&["none", "crash", "hang", "exit", "error"]),
            default: "\"none\"",
            doc: "misbehave after fault_after_steps steps: crash (abort), hang, exit (status 3), error",
        },
        ParamInfo {
            name: "fault_after_steps",
            kind: ParamKind::Int(limits::STEP_COUNT),
            default: "100",
            doc: "measured steps before the fault; 0 faults during set-up",
        },
    ];

    pub fn build(params: &Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
        let non_negative_ms = |name: &str, default: f64| {
            let ms = params.f64_or(name, default);
            limits::MILLIS
                .check(ms)
                .and_then(|ms| crate::limits::duration_from_secs(ms / 1e3))
                .map_err(|reason| WorkloadError::ParamValue {
                    workload: "cpu.synthetic".into(),
                    param: name.into(),
                    reason,
                })
        };
        let items_per_step = params.i64_or("items_per_step", 1);
        let fault_after_steps = params.i64_or("fault_after_steps", 100);
        for (name, value) in [
            ("items_per_step", items_per_step),
            ("fault_after_steps", fault_after_steps),
        ] {
            if value < 0 || (name == "items_per_step" && value == 0) {
                return Err(WorkloadError::ParamValue {
                    workload: "cpu.synthetic".into(),
                    param: name.into(),
                    reason: format!("must be a positive integer, got {value}"),
                });
            }
        }
        let fault = match params.str_or("fault", "none") {
            "crash" => Fault::Crash,
            "hang" => Fault::Hang,
            "exit" => Fault::Exit,
            "error" => Fault::Error,
            _ => Fault::None,
        };
        Ok(Box::new(CpuSynthetic {
            step: non_negative_ms("step_ms", 1.0)?,
            jitter: non_negative_ms("jitter_ms", 0.0)?,
            items_per_step: items_per_step as u64,
            setup: non_negative_ms("setup_ms", 0.0)?,
            fault,
            fault_after_steps: fault_after_steps as u64,
            steps_done: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }))
    }

    fn misbehave(&self) -> Result<(), WorkloadError> {
        match self.fault {
            Fault::None => Ok(()),
            Fault::Crash => std::process::abort(),
            Fault::Hang => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Fault::Exit => std::process::exit(3),
            Fault::Error => Err(WorkloadError::Step {
                workload: "cpu.synthetic".into(),
                step: self.steps_done,
                reason: "injected fault".into(),
            }),
        }
    }
}

/// Busy-waits: the fixture models a compute-bound step, which sleeping would not.
pub(super) fn spin_for(duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

impl Workload for CpuSynthetic {
    fn prepare(&mut self, _warmup: Duration) -> Result<(), WorkloadError> {
        spin_for(self.setup);
        if self.fault_after_steps == 0 {
            self.misbehave().map_err(|e| WorkloadError::Prepare {
                workload: "cpu.synthetic".into(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        if self.steps_done == self.fault_after_steps && self.fault_after_steps > 0 {
            self.misbehave()?;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.random::<f64>())
        };
        spin_for(self.step + jitter);
        self.steps_done += 1;
        Ok(Step {
            items: self.items_per_step,
            latency_s: None,
            failed: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ParamValue;

    fn build(pairs: &[(&str, ParamValue)]) -> Result<Box<dyn Workload>, WorkloadError> {
        let params = Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        );
        crate::workload::build("cpu.synthetic", &params, 7)
    }

    #[test]
    fn a_step_takes_at_least_its_time_and_counts_its_items() {
        let mut w = build(&[
            ("step_ms", ParamValue::Float(2.0)),
            ("items_per_step", ParamValue::Int(4)),
        ])
        .unwrap();
        w.prepare(Duration::ZERO).unwrap();
        let start = Instant::now();
        let step = w.step().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(2));
        assert_eq!(step.items, 4);
    }

    #[test]
    fn injected_error_fault_fails_the_step_it_names() {
        let mut w = build(&[
            ("step_ms", ParamValue::Float(0.0)),
            ("fault", ParamValue::Str("error".into())),
            ("fault_after_steps", ParamValue::Int(2)),
        ])
        .unwrap();
        w.step().unwrap();
        w.step().unwrap();
        let err = w.step().unwrap_err();
        assert_eq!(
            err.to_string(),
            "running step 2 of `cpu.synthetic`: injected fault"
        );
    }

    #[test]
    fn negative_step_time_is_rejected() {
        let err = build(&[("step_ms", ParamValue::Float(-1.0))])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "reading parameter `step_ms` of `cpu.synthetic`: must be a number of milliseconds from 0 to 3600000, got -1"
        );
    }
}
