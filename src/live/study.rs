//! The live state of one study and the observer that keeps it.

use std::sync::{Mutex, MutexGuard};

use hdrhistogram::Histogram;

use super::text;
use crate::metrics::{self, RunAnalysis};
use crate::monitor::dcgm::{self, GpuLabels};
use crate::monitor::LatestSample;
use crate::results::schema::{RunStatus, Study};
use crate::runner::{Observer, TenantPhase};
use crate::scenario::{Plan, PlannedRun, Slo};
use crate::sharing::ModeSetting;
use crate::worker::protocol::StepSample;

/// The labels every series of a study carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyLabels {
    /// The study's directory name (`20261203-101500-smoke-cpu`).
    pub study: String,
    /// The scenario's name.
    pub scenario: String,
}

/// A study as it runs: what the runner reported so far. Shared between the runner (which
/// reports through [`Observer`]) and the exporter (which calls [`LiveStudy::render`]).
pub struct LiveStudy {
    labels: StudyLabels,
    plan: Plan,
    /// The GPU the runs' samplers read, for the dcgm-named series.
    gpu: Option<GpuLabels>,
    state: Mutex<State>,
}

/// What the runner reported so far.
#[derive(Default)]
pub(super) struct State {
    pub runs_finished: usize,
    /// The run started last: running, or done until the next starts.
    pub current: Option<CurrentRun>,
    pub sampler: Option<LatestSample>,
    pub finished: Vec<FinishedRun>,
}

/// A run's place in the plan, as labels.
#[derive(Debug, Clone)]
pub(super) struct RunLabels {
    /// The mode with its settings, as run ids write it: `mps(atp=50)`.
    pub mode: String,
    /// The configuration (point of the tenant sweep): `c0`.
    pub config: String,
    pub repetition: u32,
}

pub(super) struct CurrentRun {
    pub labels: RunLabels,
    /// The run ended (its record is written).
    pub ended: bool,
    pub tenants: Vec<LiveTenant>,
}

/// One tenant of the current run: its window so far.
pub(super) struct LiveTenant {
    pub name: String,
    pub workload: String,
    pub phase: TenantPhase,
    /// Items of the steps reported since Go (the run's figure once it ended).
    pub items: u64,
    /// Time from Go to the last step reported, in seconds (the window once the run ended).
    pub measured_s: f64,
    /// The run's throughput as the report computes it, once the run ended, in items/s.
    pub final_throughput_items_per_s: Option<f64>,
    /// Every step's wall time.
    pub step: Distribution,
    /// The latencies the workload measured itself (serving, probes, notebooks).
    pub latency: Distribution,
    pub slo: Option<Slo>,
}

impl LiveTenant {
    /// Items per second over the window so far.
    pub fn throughput_items_per_s(&self) -> Option<f64> {
        self.final_throughput_items_per_s
            .or_else(|| (self.measured_s > 0.0).then(|| self.items as f64 / self.measured_s))
    }
}

/// Durations recorded in an HdrHistogram (microseconds, three significant digits), as
/// `metrics::latency` does, so quantiles cost nothing per step.
#[derive(Default)]
pub(super) struct Distribution {
    pub hist: Option<Histogram<u64>>,
    /// Sum of the recorded durations, in seconds.
    pub sum_s: f64,
}

impl Distribution {
    fn record(&mut self, seconds: f64) {
        let hist = self
            .hist
            .get_or_insert_with(|| metrics::latency::histogram(&[]));
        // With auto-resize on, recording only fails for values beyond u64 range.
        let _ = hist.record((seconds * 1e6).round().max(1.0) as u64);
        self.sum_s += seconds;
    }

    /// The value at quantile `q` (0..1), in seconds.
    pub fn quantile_s(&self, q: f64) -> Option<f64> {
        self.hist
            .as_ref()
            .map(|h| h.value_at_quantile(q) as f64 / 1e6)
    }

    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, |h| h.len())
    }
}

/// What a finished run left: its verdict, STP and each tenant's NP.
pub(super) struct FinishedRun {
    pub labels: RunLabels,
    pub status: RunStatus,
    pub valid: bool,
    pub stp: Option<f64>,
    /// Tenant name, workload, NP.
    pub tenants: Vec<(String, String, Option<f64>)>,
}

impl LiveStudy {
    /// A study about to run `plan`; `gpu` labels the GPU its samplers read.
    pub fn new(labels: StudyLabels, plan: Plan, gpu: Option<GpuLabels>) -> LiveStudy {
        LiveStudy {
            labels,
            plan,
            gpu,
            state: Mutex::new(State::default()),
        }
    }

    /// The Prometheus text exposition of everything reported so far.
    pub fn render(&self) -> String {
        let (mut out, sample) = {
            let state = self.state();
            let sample = state.sampler.as_ref().and_then(LatestSample::get);
            (
                text::render(&self.labels, self.plan.runs.len(), &state),
                sample,
            )
        };
        if let (Some(gpu), Some(sample)) = (&self.gpu, sample) {
            out.push_str(&dcgm::render(
                &[(gpu.clone(), sample)],
                &crate::monitor::process_name,
            ));
        }
        out
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counters, never broken invariants.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Observer for LiveStudy {
    fn run_started(&self, _idx: usize, run: &PlannedRun) {
        let tenants = self
            .plan
            .configs
            .get(run.config_idx)
            .map_or(&[][..], |c| &c.tenants)
            .iter()
            .map(|t| LiveTenant {
                name: t.name.clone(),
                workload: t.workload.clone(),
                phase: TenantPhase::Waiting,
                items: 0,
                measured_s: 0.0,
                final_throughput_items_per_s: None,
                step: Distribution::default(),
                latency: Distribution::default(),
                slo: t.slo,
            })
            .collect();
        self.state().current = Some(CurrentRun {
            labels: run_labels(&run.mode, run.config_idx, run.repetition),
            ended: false,
            tenants,
        });
    }

    fn gpu(&self, latest: Option<LatestSample>) {
        self.state().sampler = latest;
    }

    fn phase(&self, tenants: &[usize], phase: TenantPhase) {
        if let Some(run) = &mut self.state().current {
            for &idx in tenants {
                if let Some(t) = run.tenants.get_mut(idx) {
                    t.phase = phase;
                }
            }
        }
    }

    fn samples(&self, tenant_idx: usize, samples: &[StepSample]) {
        let mut state = self.state();
        let Some(t) = state
            .current
            .as_mut()
            .and_then(|run| run.tenants.get_mut(tenant_idx))
        else {
            return;
        };
        for s in samples {
            t.items += s.items;
            t.measured_s = t.measured_s.max(s.end_s);
            t.step.record(s.step_s);
            if let Some(latency) = s.latency_s {
                t.latency.record(latency);
            }
        }
    }

    fn run_finished(&self, study: &Study) {
        // Computed before taking the lock: scrapes meanwhile see the run still going.
        let Some(analysis) = analyze_last(study) else {
            return;
        };
        let labels = run_labels(&analysis.mode, analysis.config_idx, analysis.repetition);
        let workload = |name: &str| {
            study
                .plan
                .configs
                .get(analysis.config_idx)
                .and_then(|c| c.tenants.iter().find(|t| t.name == name))
                .map_or_else(String::new, |t| t.workload.clone())
        };
        let finished = FinishedRun {
            labels,
            status: analysis.status,
            valid: analysis.verdict.valid,
            stp: analysis.sharing.as_ref().map(|s| s.stp),
            tenants: analysis
                .tenants
                .iter()
                .map(|t| (t.name.clone(), workload(&t.name), t.np))
                .collect(),
        };
        let mut state = self.state();
        state.runs_finished += 1;
        if let Some(run) = &mut state.current {
            run.ended = true;
            // An exclusive run may measure only some replicas; the others never started.
            run.tenants
                .retain(|t| analysis.tenants.iter().any(|a| a.name == t.name));
            for t in &mut run.tenants {
                t.phase = TenantPhase::Done;
                if let Some(figures) = analysis.tenants.iter().find(|a| a.name == t.name) {
                    t.items = figures.items;
                    t.measured_s = figures.window_s;
                    t.final_throughput_items_per_s = Some(figures.throughput_items_per_s);
                }
            }
        }
        state.finished.push(finished);
    }
}

fn run_labels(mode: &ModeSetting, config_idx: usize, repetition: u32) -> RunLabels {
    RunLabels {
        mode: mode.to_string(),
        config: format!("c{config_idx}"),
        repetition,
    }
}

/// The figures of the study's last run, as `metrics::analyze` gives them for the whole
/// study so far. NP needs only the exclusive runs of the same configuration (its pooled
/// baseline), so only those are analyzed with it, not every run recorded.
fn analyze_last(study: &Study) -> Option<RunAnalysis> {
    let (last, earlier) = study.runs.split_last()?;
    let runs = earlier
        .iter()
        .filter(|r| r.config_idx == last.config_idx && r.mode == ModeSetting::Exclusive)
        .chain(std::iter::once(last))
        .cloned()
        .collect();
    let view = Study {
        schema_version: study.schema_version,
        scenario: study.scenario.clone(),
        scenario_source: String::new(),
        scenario_path: String::new(),
        plan: study.plan.clone(),
        environment: study.environment.clone(),
        started_at: study.started_at.clone(),
        finished_at: None,
        interrupted: study.interrupted,
        shard: study.shard,
        runs,
        analysis: None,
    };
    metrics::analyze(&view).runs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing;

    /// Analyzing the last run with only its configuration's exclusive runs gives the NP
    /// and STP that analyzing the whole study so far gives it.
    #[test]
    fn the_last_run_analyzed_alone_with_its_baselines_is_the_whole_studys() {
        let source = r#"name = "np"
[run]
duration_s = 1.0
repetitions = 2
min_samples = 20
[[modes]]
mode = "exclusive"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "a"
workload = "cpu.synthetic"
[[tenants]]
name = "b"
workload = "cpu.synthetic"
"#;
        let run = |mode: ModeSetting, rep: u32, a: usize, b: usize| {
            testing::run(
                mode,
                rep,
                vec![testing::tenant("a", a), testing::tenant("b", b)],
            )
        };
        let study = testing::study(
            source,
            vec![
                run(ModeSetting::Exclusive, 0, 100, 80),
                run(ModeSetting::TimeSlicing, 0, 60, 30),
                run(ModeSetting::Exclusive, 1, 120, 60),
                run(ModeSetting::TimeSlicing, 1, 50, 40),
            ],
        );
        let whole = metrics::analyze(&study).runs.pop().unwrap();
        let alone = analyze_last(&study).unwrap();
        let np = |r: &RunAnalysis| r.tenants.iter().map(|t| t.np).collect::<Vec<_>>();
        assert_eq!(np(&alone), np(&whole));
        assert_eq!(np(&alone), vec![Some(50.0 / 110.0), Some(40.0 / 70.0)]);
        assert_eq!(alone.sharing, whole.sharing);
        assert_eq!(alone.verdict, whole.verdict);
    }
}
