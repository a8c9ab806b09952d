//! The live figures as Prometheus text (exposition format 0.0.4). Names follow
//! <https://prometheus.io/docs/practices/naming/>: a `gpushare_` prefix, base units in the
//! name (`_seconds`, `_items_per_second`), `_total` for counters; phases are state sets
//! (one series per phase, 1 for the current one). A figure not known yet is left out,
//! never written as 0.

use std::fmt::Write;

use super::study::{CurrentRun, Distribution, LiveTenant, RunLabels, State, StudyLabels};
use crate::monitor::exposition::{self, escape};
use crate::results::schema::RunStatus;
use crate::runner::TenantPhase;

/// Quantiles of the step and latency summaries, besides each tenant's SLO percentile.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A run's phase, from its tenants'.
const RUN_PHASES: [&str; 4] = ["warmup", "measuring", "stopping", "done"];

/// Renders the study's figures.
pub(super) fn render(labels: &StudyLabels, n_planned: usize, state: &State) -> String {
    let study = Labels::new()
        .with("study", &labels.study)
        .with("scenario", &labels.scenario);
    let mut out = Exposition::default();
    out.family(
        "gpushare_study_runs_planned",
        "gauge",
        "Runs the study's plan holds.",
        vec![(study.text(), n_planned as f64)],
    );
    out.family(
        "gpushare_study_runs_finished_total",
        "counter",
        "Runs finished so far: completed, failed or interrupted.",
        vec![(study.text(), state.runs_finished as f64)],
    );
    if let Some(run) = &state.current {
        current_run(&mut out, &study, run);
    }
    finished_runs(&mut out, &study, state);
    out.text
}

fn current_run(out: &mut Exposition, study: &Labels, run: &CurrentRun) {
    let run_labels = study.run(&run.labels);
    let phase = run_phase(run);
    out.family(
        "gpushare_run_phase",
        "gauge",
        "1 for the phase the current run is in, 0 for the others: warmup (entering the mode, \
         starting, preparing and warming up tenants, the barrier), measuring (a window is \
         open), stopping (collecting summaries), done.",
        RUN_PHASES
            .iter()
            .map(|p| {
                let value = if *p == phase { 1.0 } else { 0.0 };
                (run_labels.clone().with("phase", p).text(), value)
            })
            .collect(),
    );
    let tenant = |t: &LiveTenant| {
        run_labels
            .clone()
            .with("tenant", &t.name)
            .with("workload", &t.workload)
    };
    out.family(
        "gpushare_tenant_phase",
        "gauge",
        "1 for the phase a tenant of the current run is in, 0 for the others: waiting (an \
         exclusive run measures its tenants one after another), warmup, measuring, stopping, \
         done.",
        run.tenants
            .iter()
            .flat_map(|t| {
                TenantPhase::ALL.iter().map(move |p| {
                    let value = if *p == t.phase { 1.0 } else { 0.0 };
                    (tenant(t).with("phase", p.name()).text(), value)
                })
            })
            .collect(),
    );
    let started: Vec<&LiveTenant> = run
        .tenants
        .iter()
        .filter(|t| !matches!(t.phase, TenantPhase::Waiting | TenantPhase::Warmup))
        .collect();
    out.family(
        "gpushare_tenant_items_total",
        "counter",
        "Items (the workload's unit: images, sequences, requests, cells, ...) a tenant \
         completed in the current run's measured window so far.",
        started
            .iter()
            .map(|t| (tenant(t).text(), t.items as f64))
            .collect(),
    );
    out.family(
        "gpushare_tenant_throughput_items_per_second",
        "gauge",
        "A tenant's items per second over the current run's window so far (to its last \
         reported step); once the run ended, its throughput as the report computes it.",
        started
            .iter()
            .filter_map(|t| Some((tenant(t).text(), t.throughput_items_per_s()?)))
            .collect(),
    );
    out.summary(
        "gpushare_tenant_step_seconds",
        "Wall time of a tenant's steps in the current run's window so far.",
        started.iter().map(|t| (tenant(t), &t.step, t)).collect(),
    );
    out.summary(
        "gpushare_tenant_latency_seconds",
        "Latency a tenant measures itself (a served request from its intended send time, a \
         probe's launch, a notebook's wait), in the current run's window so far.",
        started.iter().map(|t| (tenant(t), &t.latency, t)).collect(),
    );
    out.family(
        "gpushare_tenant_slo_target_seconds",
        "gauge",
        "A tenant's SLO: its latency (step time where it measures none) at this quantile \
         must stay within the target.",
        run.tenants
            .iter()
            .filter_map(|t| {
                let slo = t.slo.as_ref()?;
                let q = quantile_label(slo.percentile / 100.0);
                Some((tenant(t).with("quantile", &q).text(), slo.target_ms / 1e3))
            })
            .collect(),
    );
}

/// The run's phase: done once its record is in, else the furthest along of its tenants
/// that is not done (an exclusive run goes through warmup and measuring per tenant).
fn run_phase(run: &CurrentRun) -> &'static str {
    let any = |phase| run.tenants.iter().any(|t| t.phase == phase);
    if run.ended {
        "done"
    } else if any(TenantPhase::Measuring) {
        "measuring"
    } else if any(TenantPhase::Stopping) || (any(TenantPhase::Done) && !any(TenantPhase::Warmup)) {
        "stopping"
    } else {
        "warmup"
    }
}

fn finished_runs(out: &mut Exposition, study: &Labels, state: &State) {
    out.family(
        "gpushare_run_valid",
        "gauge",
        "1 for a finished run that is VALID, 0 for one that is INVALID or did not complete \
         (the report says why).",
        state
            .finished
            .iter()
            .map(|r| {
                let labels = study.run(&r.labels).with("status", status_name(r.status));
                (labels.text(), if r.valid { 1.0 } else { 0.0 })
            })
            .collect(),
    );
    out.family(
        "gpushare_run_system_throughput",
        "gauge",
        "STP of a finished shared run: the sum of its tenants' normalized progress (Eyerman \
         & Eeckhout 2008); above 1, sharing beat running the tenants one after another.",
        state
            .finished
            .iter()
            .filter_map(|r| Some((study.run(&r.labels).text(), r.stp?)))
            .collect(),
    );
    out.family(
        "gpushare_tenant_normalized_progress",
        "gauge",
        "NP of a tenant in a finished run: its throughput over its throughput alone, pooled \
         over the exclusive runs of its configuration recorded so far (the report pools \
         all of them).",
        state
            .finished
            .iter()
            .flat_map(|r| {
                r.tenants.iter().filter_map(|(name, workload, np)| {
                    let labels = study
                        .run(&r.labels)
                        .with("tenant", name)
                        .with("workload", workload);
                    Some((labels.text(), (*np)?))
                })
            })
            .collect(),
    );
}

fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    }
}

/// A label set under construction, in the order written.
#[derive(Clone, Default)]
struct Labels(Vec<(&'static str, String)>);

impl Labels {
    fn new() -> Labels {
        Labels::default()
    }

    fn with(mut self, name: &'static str, value: &str) -> Labels {
        self.0.push((name, escape(value)));
        self
    }

    fn run(&self, run: &RunLabels) -> Labels {
        self.clone()
            .with("mode", &run.mode)
            .with("config", &run.config)
            .with("repetition", &run.repetition.to_string())
    }

    fn text(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        pairs.join(",")
    }
}

/// `0.99`, `0.999`: the quantile as a short decimal.
fn quantile_label(q: f64) -> String {
    let text = format!("{q:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Writes HELP and TYPE and then each series with a finite value; nothing when none.
    fn family(&mut self, name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>) {
        exposition::family(&mut self.text, name, kind, help, &rows);
    }

    /// A summary per tenant with recorded values: the quantiles, the tenant's SLO
    /// percentile among them, `_sum` and `_count`.
    fn summary(
        &mut self,
        name: &str,
        help: &str,
        rows: Vec<(Labels, &Distribution, &&LiveTenant)>,
    ) {
        let rows: Vec<_> = rows.into_iter().filter(|(_, d, _)| d.count() > 0).collect();
        if rows.is_empty() {
            return;
        }
        exposition::header(&mut self.text, name, "summary", help);
        for (labels, dist, tenant) in rows {
            let mut quantiles = QUANTILES.to_vec();
            if let Some(slo) = &tenant.slo {
                let q = slo.percentile / 100.0;
                if !quantiles.iter().any(|x| (x - q).abs() < 1e-9) {
                    quantiles.push(q);
                    quantiles.sort_by(f64::total_cmp);
                }
            }
            for q in quantiles {
                if let Some(v) = dist.quantile_s(q) {
                    let labels = labels.clone().with("quantile", &quantile_label(q)).text();
                    let _ = writeln!(self.text, "{name}{{{labels}}} {v}");
                }
            }
            let labels = labels.text();
            let _ = writeln!(self.text, "{name}_sum{{{labels}}} {}", dist.sum_s);
            let _ = writeln!(self.text, "{name}_count{{{labels}}} {}", dist.count());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::live::{LiveStudy, StudyLabels};
    use crate::monitor::dcgm::GpuLabels;
    use crate::monitor::{self, MonitorConfig, SyntheticSource};
    use crate::results::schema::Study;
    use crate::results::testing;
    use crate::runner::{Observer, TenantPhase};
    use crate::sharing::ModeSetting;
    use crate::worker::protocol::StepSample;

    const SCENARIO: &str = r#"name = "live"
[run]
duration_s = 1.0
repetitions = 1
min_samples = 20
[[modes]]
mode = "exclusive"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "steady"
workload = "cpu.synthetic"
[[tenants]]
name = "notebook"
workload = "interactive.notebook"
params = { device = "cpu" }
slo = { percentile = 75.0, target_ms = 50.0 }
"#;

    fn live(study: &Study) -> LiveStudy {
        LiveStudy::new(
            StudyLabels {
                study: "20261203-live".into(),
                scenario: "live".into(),
            },
            study.plan.clone(),
            None,
        )
    }

    /// `n` steps of `step_ms` each, back to back from `from_s`, with a latency of a tenth
    /// of the step when `latency`.
    fn steps(n: usize, step_ms: f64, from_s: f64, latency: bool) -> Vec<StepSample> {
        (1..=n)
            .map(|i| StepSample {
                end_s: from_s + i as f64 * step_ms / 1e3,
                step_s: step_ms / 1e3,
                items: 2,
                latency_s: latency.then_some(step_ms / 1e4),
                failed: 0,
            })
            .collect()
    }

    /// The runner's events for a study of an exclusive run and a time-sliced one, with
    /// the text after each stage.
    fn replay() -> Vec<String> {
        let mut study = testing::study(SCENARIO, vec![]);
        let live = live(&study);
        let plan = study.plan.clone();
        let mut texts = vec![live.render()];
        live.run_started(0, &plan.runs[0]);
        live.phase(&[0], TenantPhase::Warmup);
        texts.push(live.render());
        live.phase(&[0], TenantPhase::Measuring);
        live.samples(0, &steps(50, 10.0, 0.0, false));
        live.phase(&[0], TenantPhase::Stopping);
        live.phase(&[0], TenantPhase::Done);
        live.phase(&[1], TenantPhase::Warmup);
        live.phase(&[1], TenantPhase::Measuring);
        live.samples(1, &steps(10, 40.0, 0.0, true));
        texts.push(live.render());
        live.phase(&[1], TenantPhase::Stopping);
        live.phase(&[1], TenantPhase::Done);
        study.runs.push(testing::run(
            ModeSetting::Exclusive,
            0,
            vec![
                testing::tenant("steady", 100),
                testing::tenant("notebook", 80),
            ],
        ));
        live.run_finished(&study);
        texts.push(live.render());
        live.run_started(1, &plan.runs[1]);
        live.phase(&[0, 1], TenantPhase::Warmup);
        live.phase(&[0, 1], TenantPhase::Measuring);
        live.samples(0, &steps(20, 20.0, 0.0, false));
        live.samples(1, &steps(5, 80.0, 0.0, true));
        texts.push(live.render());
        live.phase(&[0, 1], TenantPhase::Stopping);
        live.phase(&[0, 1], TenantPhase::Done);
        study.runs.push(testing::run(
            ModeSetting::TimeSlicing,
            0,
            vec![
                testing::tenant("steady", 50),
                testing::tenant("notebook", 40),
            ],
        ));
        live.run_finished(&study);
        texts.push(live.render());
        texts
    }

    #[test]
    fn a_study_replayed_renders_its_phases_windows_and_np() {
        let texts = replay();
        insta::assert_snapshot!("before_any_run", texts[0]);
        insta::assert_snapshot!("exclusive_second_tenant_measuring", texts[2]);
        insta::assert_snapshot!("time_sliced_run_measuring", texts[4]);
        insta::assert_snapshot!("study_done", texts[5]);
    }

    #[test]
    fn the_run_phase_follows_its_tenants() {
        let phase = |text: &str| -> String {
            text.lines()
                .filter(|l| l.starts_with("gpushare_run_phase{") && l.ends_with(" 1"))
                .map(|l| {
                    l.split("phase=\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let texts = replay();
        let phases: Vec<String> = texts.iter().map(|t| phase(t)).collect();
        assert_eq!(
            phases,
            ["", "warmup", "measuring", "done", "measuring", "done"]
        );
    }

    /// Every line is a comment or `name{labels} value`; each family has one HELP and one
    /// TYPE; names carry the prefix, and counters end in `_total`.
    #[test]
    fn the_text_follows_prometheus_naming() {
        for text in replay() {
            let mut kinds = std::collections::BTreeMap::new();
            let mut helps = std::collections::BTreeSet::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let name = rest.split(' ').next().unwrap();
                    assert!(helps.insert(name.to_string()), "two HELP lines for {name}");
                    assert!(rest.len() > name.len() + 10, "{line}");
                    continue;
                }
                if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').unwrap();
                    assert!(kinds.insert(name.to_string(), kind.to_string()).is_none());
                    continue;
                }
                let (series, value) = line.rsplit_once(' ').unwrap();
                let value: f64 = value.parse().unwrap();
                assert!(value.is_finite(), "{line}");
                let name = series.split('{').next().unwrap();
                assert!(series.ends_with('}'), "{line}");
                let family = ["_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|f| kinds.get(*f).is_some_and(|k| k == "summary"))
                    })
                    .unwrap_or(name);
                assert!(helps.contains(family), "{family} has no HELP");
                assert!(family.starts_with("gpushare_"), "{line}");
                assert_eq!(
                    kinds[family] == "counter",
                    family.ends_with("_total"),
                    "{family}"
                );
            }
        }
    }

    #[test]
    fn during_a_sampled_run_the_gpu_figures_carry_dcgm_names() {
        let study = testing::study(SCENARIO, vec![]);
        let labels = GpuLabels {
            gpu: 0,
            uuid: "GPU-1".into(),
            model_name: "synthetic GPU".into(),
            hostname: "host".into(),
        };
        let live = LiveStudy::new(
            StudyLabels {
                study: "s".into(),
                scenario: "live".into(),
            },
            study.plan.clone(),
            Some(labels),
        );
        let sampler =
            monitor::start_with_source(MonitorConfig::default(), Box::new(SyntheticSource::new()))
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sampler.latest().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        live.gpu(Some(sampler.latest_reader()));
        let text = live.render();
        assert!(
            text.contains("DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-1\",device=\"nvidia0\",modelName=\"synthetic GPU\",Hostname=\"host\"} 400\n"),
            "{text}"
        );
        assert!(text.contains("gpushare_study_runs_planned{study=\"s\",scenario=\"live\"} 2\n"));
        live.gpu(None);
        sampler.stop();
        assert!(
            !live.render().contains("DCGM_"),
            "no sampler, no GPU figures"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let study = testing::study(SCENARIO, vec![]);
        let live = LiveStudy::new(
            StudyLabels {
                study: "a\"b\\c\nd".into(),
                scenario: "live".into(),
            },
            study.plan.clone(),
            None,
        );
        assert!(live
            .render()
            .contains("{study=\"a\\\"b\\\\c\\nd\",scenario=\"live\"}"));
    }
}
