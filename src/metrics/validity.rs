//! Whether a run's figures can be trusted: VALID only when every tenant met the minimum
//! measured span and sample count, no worker failed, every SLO percentile had enough
//! samples to be stated, and (for shared runs) the exclusive baseline exists. Each failed
//! check says what to change.

use serde::{Deserialize, Serialize};

use super::latency::min_samples_for_percentile;
use super::throughput::TenantFigures;
use crate::results::schema::{RunRecord, RunStatus};
use crate::scenario::RunSettings;

/// A run's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub valid: bool,
    /// Every check that failed; empty when the run is VALID.
    pub failed: Vec<FailedCheck>,
}

/// One failed check, with what to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedCheck {
    /// The tenant it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl Verdict {
    pub fn from_checks(failed: Vec<FailedCheck>) -> Verdict {
        Verdict {
            valid: failed.is_empty(),
            failed,
        }
    }
}

/// The checks that need only the run itself.
pub fn check_run(
    run: &RunRecord,
    figures: &[TenantFigures],
    settings: &RunSettings,
) -> Vec<FailedCheck> {
    let mut failed = vec![];
    match run.status {
        RunStatus::Completed => {}
        RunStatus::Failed => failed.push(FailedCheck {
            tenant: None,
            problem: format!(
                "the run failed: {}",
                run.failure.as_deref().unwrap_or("no reason recorded")
            ),
            fix: "read the failing worker's stderr in the report or run.json and fix its cause"
                .into(),
        }),
        RunStatus::Interrupted => failed.push(FailedCheck {
            tenant: None,
            problem: "the run was interrupted".into(),
            fix: "run the study again without interrupting it".into(),
        }),
    }
    let min_span = settings.min_duration_s();
    for f in figures {
        if f.steps < settings.min_samples {
            failed.push(FailedCheck {
                tenant: Some(f.name.clone()),
                problem: format!(
                    "completed {} steps, fewer than run.min_samples = {}",
                    f.steps, settings.min_samples
                ),
                fix: "lengthen run.duration_s (or --duration), or use smaller steps".into(),
            });
        }
        if f.measured_span_s < min_span {
            failed.push(FailedCheck {
                tenant: Some(f.name.clone()),
                problem: format!(
                    "completed steps span {:.3} s, less than the minimum {:.3} s",
                    f.measured_span_s, min_span
                ),
                fix: "lengthen run.duration_s so several steps fit, or lower run.min_duration_s"
                    .into(),
            });
        }
        if let Some(slo) = &f.slo {
            if !slo.supported {
                let needed = min_samples_for_percentile(slo.percentile);
                failed.push(FailedCheck {
                    tenant: Some(f.name.clone()),
                    problem: format!(
                        "P{} needs at least {needed} samples to be stated, got {}",
                        slo.percentile, f.steps
                    ),
                    fix: format!(
                        "lengthen run.duration_s until the tenant completes {needed} steps"
                    ),
                });
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::throughput::SloFigures;
    use crate::workload::Device;

    fn settings() -> RunSettings {
        RunSettings {
            isolation: Default::default(),
            warmup_s: 0.0,
            duration_s: 10.0,
            repetitions: 1,
            min_samples: 50,
            min_duration_s: None,
            exclusive_replicas: None,
            seed: 1,
            ready_timeout_s: 1.0,
            stop_timeout_s: 1.0,
        }
    }

    fn figures(steps: u64, span: f64) -> TenantFigures {
        TenantFigures {
            name: "a".into(),
            workload: "cpu.synthetic".into(),
            device: Device::Cpu,
            item: "steps".into(),
            throughput_items_per_s: 1.0,
            steps,
            items: steps,
            failed: 0,
            window_s: 10.0,
            measured_span_s: span,
            windowed_cv: 0.0,
            step: None,
            latency: None,
            slo: None,
            np: None,
            memory_peak_bytes: None,
            energy_per_item_j: None,
        }
    }

    fn run(status: RunStatus) -> RunRecord {
        RunRecord {
            id: "exclusive/c0/r0".into(),
            config_idx: 0,
            mode: crate::sharing::ModeSetting::Exclusive,
            repetition: 0,
            status,
            failure: Some("worker `a` exited with status 3".into()),
            mode_record: Default::default(),
            started_s: 0.0,
            elapsed_s: 1.0,
            tenants: vec![],
            monitor: None,
            monitor_note: None,
            windows: vec![],
        }
    }

    #[test]
    fn enough_steps_over_enough_time_is_valid() {
        assert!(check_run(
            &run(RunStatus::Completed),
            &[figures(100, 9.9)],
            &settings()
        )
        .is_empty());
    }

    #[test]
    fn each_shortfall_is_its_own_check_with_a_fix() {
        let failed = check_run(&run(RunStatus::Completed), &[figures(10, 5.0)], &settings());
        let problems: Vec<&str> = failed.iter().map(|c| c.problem.as_str()).collect();
        assert_eq!(
            problems,
            [
                "completed 10 steps, fewer than run.min_samples = 50",
                "completed steps span 5.000 s, less than the minimum 8.000 s",
            ]
        );
    }

    #[test]
    fn a_failed_run_is_invalid_and_says_why() {
        let failed = check_run(&run(RunStatus::Failed), &[figures(100, 9.9)], &settings());
        assert_eq!(
            failed[0].problem,
            "the run failed: worker `a` exited with status 3"
        );
    }

    #[test]
    fn an_unsupported_percentile_is_invalid() {
        let mut f = figures(100, 9.9);
        f.slo = Some(SloFigures {
            percentile: 99.0,
            target_ms: 50.0,
            observed_ms: 10.0,
            attainment: 1.0,
            met: true,
            supported: false,
        });
        let failed = check_run(&run(RunStatus::Completed), &[f], &settings());
        assert_eq!(
            failed[0].problem,
            "P99 needs at least 1000 samples to be stated, got 100"
        );
    }
}
