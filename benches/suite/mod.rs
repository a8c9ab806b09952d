//! What the sharing-mode benches (`mps`, `timeslice`, `mig`) share: deciding whether this
//! host can run a suite, and running a shipped scenario's study on the local GPU through
//! the library, the same way `gpushare run` does, then printing its comparison table.
//!
//! A suite that cannot run here (no GPU, the `cuda` feature off, MPS binaries missing,
//! MIG off) prints one line saying why and exits 0: a bench run on a CI or development
//! machine is a skip, not a failure. The decision is `gpushare::doctor::cannot_run`,
//! unit-tested in the library. A suite that ran exits 1 if any run was INVALID, 130 if
//! it was interrupted (the runner stops the workers and writes what it measured).
//!
//! Built with `--features torch`, a suite then runs its model mixes (shipped training and
//! inference scenarios) the same way, each narrowed to the suite's modes; without the
//! feature it says they were skipped and why.
//!
//! Studies are written to `results/bench-<suite>-<timestamp>/run.json` (a model mix to
//! `results/bench-<suite>-<scenario>-<timestamp>/`); with `GPUSHARE_RESULTS_DIR` set, that
//! directory takes the place of `results/`. Workers are the gpushare binary named by
//! `GPUSHARE_BIN`, else the one cargo built with the bench.

// Each bench uses part of this module.
#![allow(dead_code)]

#[cfg(feature = "cuda")]
pub mod latency;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use gpushare::doctor;
use gpushare::isolation::ProcessIsolation;
use gpushare::report::{self, Format};
use gpushare::runner::{run_study, Progress, StudyInput};
use gpushare::scenario::{self, Plan, Scenario};
use gpushare::sharing::{self, ModeSetting, WorkerSharing};

/// One bench: which shipped scenario it runs and which of its modes it keeps.
pub struct Suite {
    /// The bench's name, as in `cargo bench --bench <name>`.
    pub name: &'static str,
    /// The shipped scenario it runs (a name from `scenario::SHIPPED`).
    pub scenario: &'static str,
    /// Shipped model scenarios it runs after that one when built with the `torch`
    /// feature.
    pub model_scenarios: &'static [&'static str],
    /// The modes of that scenario it keeps, by name; `exclusive` is always kept because
    /// every other mode is measured against it.
    pub modes: &'static [&'static str],
    /// Appended to the skip line: what to set up so the suite can run.
    pub setup_hint: Option<&'static str>,
    /// Rough wall time on an H200, said before the study starts.
    pub about_minutes: f64,
}

/// The shipped model mixes the `mps` and `timeslice` suites run with `--features torch`.
pub const MODEL_MIXES: &[&str] = &[
    "resnet50-train-x2",
    "resnet50-train-bert-infer",
    "gpt2-train-vit-infer",
];

/// The standard matrix's settings: shorter than the shipped scenarios' own so that
/// `cargo bench --features torch --bench mps` (probes-mix, launch latency and the three
/// model mixes) fits in 10 minutes of an H200. Chosen from the committed H200 studies
/// (`results/h200/2026-11-29-*`): the model mixes were measured there with 5 s windows,
/// their trainers' throughput varying 0.4-1.6% (CV) over 3 repetitions, so 2
/// repetitions of 5 s keep their NPs within a few percent (the inference tenant of
/// `resnet50-train-bert-infer` varied 9% alone at any length: it is host-bound); the
/// probes' compute and memory throughput varied under 0.3% at 8 s windows (MPS's own
/// 4-30% is the mode, not the window), and 6 s still gives the latency probe 1,350
/// launches under time-slicing, above the 1,000 its P99 needs. Set
/// `GPUSHARE_BENCH_FULL=1` to run the scenarios' own settings instead.
pub const STANDARD_PROBES_DURATION_S: f64 = 6.0;
/// See [`STANDARD_PROBES_DURATION_S`].
pub const STANDARD_MIX_DURATION_S: f64 = 5.0;
/// See [`STANDARD_PROBES_DURATION_S`].
pub const STANDARD_MIX_REPETITIONS: u32 = 2;

/// Whether `GPUSHARE_BENCH_FULL` asks for the scenarios' own windows and repetitions.
fn full_matrix() -> bool {
    std::env::var_os("GPUSHARE_BENCH_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// How a study ended.
enum Finished {
    AllValid,
    SomeInvalid,
    /// SIGINT or SIGTERM: the runner stopped the workers and wrote what was measured.
    Interrupted,
}

/// A suite's scenario, narrowed to the suite's modes.
pub struct SuiteScenario {
    pub scenario: Scenario,
    pub source: String,
    pub path: PathBuf,
    pub plan: Plan,
}

impl Suite {
    /// Runs the suite: checks the host, runs the study, prints the table, then runs
    /// `after_study` (a bench's own measurements). Returns the process exit code.
    pub fn main(&self, after_study: impl FnOnce(&SuiteScenario) -> Result<()>) -> ExitCode {
        match self.try_main(after_study) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("{} bench: failed {error:#}", self.name);
                ExitCode::FAILURE
            }
        }
    }

    fn try_main(&self, after_study: impl FnOnce(&SuiteScenario) -> Result<()>) -> Result<ExitCode> {
        let standard = !full_matrix();
        let loaded = self.load(
            self.scenario,
            standard.then_some((STANDARD_PROBES_DURATION_S, None)),
        )?;
        // Loaded up front, so that a scenario that does not exist or lacks the suite's
        // modes is an error on any machine, not after the first study.
        let mixes = self
            .model_scenarios
            .iter()
            .map(|name| {
                self.load(
                    name,
                    standard.then_some((STANDARD_MIX_DURATION_S, Some(STANDARD_MIX_REPETITIONS))),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(why) = self.cannot_run(&loaded) {
            println!("{} bench: skipped: {why}", self.name);
            return Ok(ExitCode::SUCCESS);
        }
        // `cargo bench` passes --bench; `cargo test --benches` does not, and a test run
        // should not start a study of several minutes.
        if !std::env::args().any(|arg| arg == "--bench") {
            println!(
                "{} bench: this host can run it; `cargo bench --bench {}` does (about {} min)",
                self.name, self.name, self.about_minutes
            );
            return Ok(ExitCode::SUCCESS);
        }
        // GPUSHARE_BENCH_PART splits the matrix across two calls of a GPU machine whose
        // calls are limited in time: `probes` (the probe study and launch latency) or
        // `mixes` (the model mixes); anything else runs both.
        let part = std::env::var("GPUSHARE_BENCH_PART").unwrap_or_default();
        let mut all_valid = true;
        if part != "mixes" {
            all_valid = match self.study(&loaded, results_dir(self.name))? {
                Finished::AllValid => true,
                Finished::SomeInvalid => false,
                Finished::Interrupted => {
                    println!("{} bench: interrupted", self.name);
                    return Ok(ExitCode::from(130));
                }
            };
            after_study(&loaded)?;
        }
        let mixes = if part == "probes" {
            &[][..]
        } else {
            &mixes[..]
        };
        match self.model_mixes(mixes)? {
            Finished::AllValid => {}
            Finished::SomeInvalid => all_valid = false,
            Finished::Interrupted => {
                println!("{} bench: interrupted", self.name);
                return Ok(ExitCode::from(130));
            }
        }
        if all_valid {
            Ok(ExitCode::SUCCESS)
        } else {
            println!(
                "{} bench: some runs were INVALID (see the Runs table above)",
                self.name
            );
            Ok(ExitCode::FAILURE)
        }
    }

    /// The model mixes, one study each, when built with the `torch` feature; otherwise a
    /// line saying they were skipped.
    fn model_mixes(&self, mixes: &[SuiteScenario]) -> Result<Finished> {
        if mixes.is_empty() {
            return Ok(Finished::AllValid);
        }
        if !cfg!(feature = "torch") {
            println!(
                "{} bench: model mixes ({}) skipped: they need `cargo bench --features torch --bench {}` (README, \"Torch workloads\")",
                self.name,
                self.model_scenarios.join(", "),
                self.name
            );
            return Ok(Finished::AllValid);
        }
        let mut finished = Finished::AllValid;
        for mix in mixes {
            let out_dir = results_dir(&format!("{}-{}", self.name, mix.scenario.name));
            match self.study(mix, out_dir)? {
                Finished::AllValid => {}
                Finished::SomeInvalid => finished = Finished::SomeInvalid,
                Finished::Interrupted => return Ok(Finished::Interrupted),
            }
        }
        Ok(finished)
    }

    /// The shipped scenario `name` with only the suite's modes, and the standard
    /// matrix's window (seconds) and repetitions when given.
    fn load(&self, name: &str, standard: Option<(f64, Option<u32>)>) -> Result<SuiteScenario> {
        let (mut scenario, source, path) = scenario::resolve(Path::new(name))
            .with_context(|| format!("to load the shipped scenario `{name}`"))?;
        if let Some((duration_s, repetitions)) = standard {
            scenario::override_duration(&mut scenario, duration_s)
                .with_context(|| format!("to shorten `{name}` to the standard matrix"))?;
            if let Some(n) = repetitions {
                scenario.run.repetitions = n;
            }
        }
        scenario
            .modes
            .retain(|mode| *mode == ModeSetting::Exclusive || self.modes.contains(&mode.name()));
        if scenario.modes.len() < 2 {
            bail!("to find the modes {:?} in scenario `{name}`", self.modes);
        }
        let plan = Plan::expand(&scenario);
        Ok(SuiteScenario {
            scenario,
            source,
            path,
            plan,
        })
    }

    /// Why this host cannot run the suite, or `None`. The setup hint is added only where
    /// there is a GPU to set up.
    fn cannot_run(&self, loaded: &SuiteScenario) -> Option<String> {
        let report = doctor::diagnose();
        let mut modes: Vec<&str> = Vec::new();
        for mode in &loaded.scenario.modes {
            if !modes.contains(&mode.name()) {
                modes.push(mode.name());
            }
        }
        let cuda = cuda_sees_gpu();
        let hint = match self.setup_hint {
            Some(hint) if cuda && report.gpu_problem.is_none() => format!(" ({hint})"),
            _ => String::new(),
        };
        if let Some(why) = doctor::cannot_run(&report, &modes, cuda) {
            return Some(format!("{why}{hint}"));
        }
        // MIG is on with instances; the scenario's tenants must also find theirs.
        let gpu = report.host_gpus.as_ref()?.gpus.first()?;
        let inventory = sharing::MigInventory::from_gpu(gpu);
        let workers: Vec<WorkerSharing> = loaded.plan.configs[0]
            .tenants
            .iter()
            .map(|t| WorkerSharing {
                label: t.name.clone(),
                sharing: t.sharing.clone(),
            })
            .collect();
        loaded.scenario.modes.iter().find_map(|mode| match mode {
            ModeSetting::Mig(setting) => sharing::mig::place(&inventory, setting, &workers)
                .err()
                .map(|error| format!("mode `{mode}` cannot run here: failed {error}{hint}")),
            _ => None,
        })
    }

    /// Runs the study into `out_dir`, prints its table and where it was written.
    fn study(&self, loaded: &SuiteScenario, out_dir: PathBuf) -> Result<Finished> {
        let isolation = ProcessIsolation::new(Some(gpushare_exe()))
            .context("to find the gpushare binary for the workers")?;
        eprintln!(
            "{} bench: running `{}` ({} runs), writing {}",
            self.name,
            loaded.scenario.name,
            loaded.plan.runs.len(),
            out_dir.display()
        );
        let runtime = tokio::runtime::Runtime::new().context("to start the tokio runtime")?;
        let study = runtime
            .block_on(run_study(
                StudyInput {
                    scenario: &loaded.scenario,
                    scenario_source: &loaded.source,
                    scenario_path: &loaded.path,
                    plan: &loaded.plan,
                    shard: None,
                    isolation: &isolation,
                    out_dir: out_dir.clone(),
                    flush_interval_ms: 100,
                    monitor: Some(gpushare::monitor::MonitorConfig::default()),
                },
                &Progress::new(loaded.plan.runs.len()),
            ))
            .context("to run the study")?;
        print!("{}", report::render(&study, Format::Table));
        println!(
            "{} bench: results in {} (`gpushare report {}` re-renders them)",
            self.name,
            out_dir.join("run.json").display(),
            out_dir.display()
        );
        let all_valid = gpushare::metrics::analyze(&study)
            .runs
            .iter()
            .all(|r| r.verdict.valid);
        Ok(if study.interrupted {
            Finished::Interrupted
        } else if all_valid && study.runs.len() == loaded.plan.runs.len() {
            Finished::AllValid
        } else {
            Finished::SomeInvalid
        })
    }
}

/// `main` of a suite that follows its study with the launch-latency cases (`mps`,
/// `timeslice`): the bench executable is also the latency client those cases start.
pub fn main_with_launch_latency(suite: &Suite) -> ExitCode {
    #[cfg(feature = "cuda")]
    if let Some(code) = latency::client_if_asked() {
        return code;
    }
    suite.main(|loaded| {
        #[cfg(feature = "cuda")]
        latency::compare(loaded)?;
        #[cfg(not(feature = "cuda"))]
        let _ = loaded;
        Ok(())
    })
}

/// The gpushare binary workers run: `GPUSHARE_BIN` (for a bench executable copied to a
/// machine where the build path does not exist), else the one cargo built.
pub fn gpushare_exe() -> PathBuf {
    std::env::var_os("GPUSHARE_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_gpushare").into(), Into::into)
}

/// `results/bench-<suite>-<timestamp>`, or the same under `GPUSHARE_RESULTS_DIR`.
fn results_dir(suite: &str) -> PathBuf {
    let parent = std::env::var_os("GPUSHARE_RESULTS_DIR")
        .map_or_else(|| PathBuf::from("results"), Into::into);
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_else(|_| "now".to_string());
    parent.join(format!("bench-{suite}-{stamp}"))
}

/// Whether the CUDA driver library loads and counts a GPU (NVML seeing one does not
/// promise it).
fn cuda_sees_gpu() -> bool {
    #[cfg(feature = "cuda")]
    {
        gpushare::workload::probe::gpu_available()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}
