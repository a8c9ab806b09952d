//! What a scenario's plan costs before it is expanded: how many runs and workers, and
//! about how long it takes. Counting never materializes the plan, so a sweep of millions
//! of points is measured and refused in microseconds instead of filling memory.
//!
//! The limits are documented in the README ("Plan size"): a plan beyond any of them is
//! refused by `validate` and `run` unless `--force`.

use std::fmt;

use super::model::Scenario;
use crate::sharing::ModeSetting;

/// The most runs a plan may have without `--force`.
pub const MAX_RUNS: u128 = 10_000;
/// The most worker processes one run may start without `--force`: a time-sliced run
/// starts them all at once.
pub const MAX_WORKERS_PER_RUN: u64 = 1_024;
/// The longest estimated wall time without `--force`, in seconds (a day).
pub const MAX_ESTIMATED_S: f64 = 86_400.0;

/// The runner's own time per measured window, in seconds: starting the workers, the
/// Ready barrier, Stop and reaping, writing run.json. Measured on the CPU smoke study
/// (about 0.4 s per window on a 2-core VM); a workload's own set-up (loading a model,
/// compiling kernels) comes on top.
pub const OVERHEAD_PER_WINDOW_S: f64 = 0.5;

/// A plan's size and estimated wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Points of the tenant parameter sweep.
    pub n_configs: u128,
    pub n_modes: u128,
    pub repetitions: u128,
    /// Runs: configurations x modes x repetitions.
    pub n_runs: u128,
    /// Worker processes in one run of one configuration (every replica of every tenant).
    pub n_workers: u64,
    /// Estimated wall time of the whole plan, in seconds.
    pub estimated_s: f64,
    /// The part of it the exclusive baseline takes (tenants one after another), in seconds.
    pub exclusive_s: f64,
}

impl Budget {
    /// Counts the plan of a validated scenario without expanding it.
    pub fn of(scenario: &Scenario) -> Budget {
        let n_configs = scenario
            .tenants
            .iter()
            .flat_map(|t| {
                t.params
                    .values()
                    .map(Vec::len)
                    .chain(std::iter::once(t.replicas_sweep.len()))
            })
            .map(|n| n.max(1) as u128)
            .fold(1u128, u128::saturating_mul);
        // A tenant's replica counts: its sweep, or its one count.
        let replica_counts = |t: &crate::scenario::Tenant| -> Vec<u32> {
            if t.replicas_sweep.is_empty() {
                vec![t.replicas]
            } else {
                t.replicas_sweep.clone()
            }
        };
        let n_modes = scenario.modes.len() as u128;
        let repetitions = u128::from(scenario.run.repetitions);
        let n_runs = n_configs
            .saturating_mul(n_modes)
            .saturating_mul(repetitions);
        let n_workers = scenario
            .tenants
            .iter()
            .map(|t| u64::from(replica_counts(t).into_iter().max().unwrap_or(1)))
            .fold(0u64, u64::saturating_add);
        // Solo windows per point of the sweep: each tenant's replicas measured alone
        // (at most run.exclusive_replicas), averaged over its replica sweep.
        let measured_alone = scenario.run.exclusive_replicas.unwrap_or(u32::MAX);
        let n_alone: f64 = scenario
            .tenants
            .iter()
            .map(|t| {
                let counts = replica_counts(t);
                counts
                    .iter()
                    .map(|&r| f64::from(r.min(measured_alone)))
                    .sum::<f64>()
                    / counts.len() as f64
            })
            .sum();
        let window_s = OVERHEAD_PER_WINDOW_S + scenario.run.warmup_s + scenario.run.duration_s;
        let n_exclusive = scenario
            .modes
            .iter()
            .filter(|m| **m == ModeSetting::Exclusive)
            .count() as f64;
        let n_shared = scenario.modes.len() as f64 - n_exclusive;
        let points = n_configs as f64 * repetitions as f64;
        let exclusive_s = points * n_exclusive * n_alone * window_s;
        let estimated_s = exclusive_s + points * n_shared * window_s;
        Budget {
            n_configs,
            n_modes,
            repetitions,
            n_runs,
            n_workers,
            estimated_s,
            exclusive_s,
        }
    }

    /// Every limit this plan passes, or a sentence per limit it exceeds.
    pub fn over_limits(&self) -> Vec<String> {
        let mut over = vec![];
        if self.n_runs > MAX_RUNS {
            over.push(format!(
                "{} runs is more than the limit of {MAX_RUNS}",
                self.n_runs
            ));
        }
        if self.n_workers > MAX_WORKERS_PER_RUN {
            over.push(format!(
                "{} workers per run is more than the limit of {MAX_WORKERS_PER_RUN}",
                self.n_workers
            ));
        }
        if self.estimated_s > MAX_ESTIMATED_S {
            over.push(format!(
                "about {} is more than the limit of {}",
                wall_time(self.estimated_s),
                wall_time(MAX_ESTIMATED_S)
            ));
        }
        over
    }
}

impl fmt::Display for Budget {
    /// "6 run(s) = 1 configuration(s) x 2 mode(s) x 3 repetition(s), 2 worker(s) per run,
    /// about 25 s (exclusive baseline 15 s)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} run(s) = {} configuration(s) x {} mode(s) x {} repetition(s), {} worker(s) per run, about {} (exclusive baseline, tenants one after another: {})",
            self.n_runs,
            self.n_configs,
            self.n_modes,
            self.repetitions,
            self.n_workers,
            wall_time(self.estimated_s),
            wall_time(self.exclusive_s)
        )
    }
}

/// Seconds as a person reads a wall time: `25 s`, `12 min`, `8.3 h`, `41 days`.
pub fn wall_time(seconds: f64) -> String {
    if !seconds.is_finite() {
        "forever".to_string()
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 36_000.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds < 172_800.0 {
        format!("{:.0} h", seconds / 3600.0)
    } else {
        format!("{:.0} days", seconds / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, Plan};
    use std::path::Path;

    fn scenario(text: &str) -> Scenario {
        parse(Path::new("s.toml"), text).unwrap()
    }

    const SMOKE: &str = r#"name = "s"
[run]
warmup_s = 0.2
duration_s = 2.0
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "a"
workload = "cpu.synthetic"
params = { step_ms = [1.0, 2.0] }
[[tenants]]
name = "b"
workload = "cpu.synthetic"
replicas = 2
"#;

    #[test]
    fn counts_agree_with_the_expanded_plan() {
        let s = scenario(SMOKE);
        let budget = Budget::of(&s);
        let plan = Plan::expand(&s);
        assert_eq!(budget.n_runs, plan.runs.len() as u128);
        assert_eq!(budget.n_configs, plan.configs.len() as u128);
        assert_eq!(budget.n_workers, plan.configs[0].tenants.len() as u64);
        // 2 configs x 3 reps; exclusive: 3 workers x 2.7 s; time-slicing: 2.7 s.
        assert!((budget.exclusive_s - 6.0 * 3.0 * 2.7).abs() < 1e-9);
        assert!((budget.estimated_s - 6.0 * 4.0 * 2.7).abs() < 1e-9);
        assert_eq!(
            budget.to_string(),
            "12 run(s) = 2 configuration(s) x 2 mode(s) x 3 repetition(s), 3 worker(s) per run, about 65 s (exclusive baseline, tenants one after another: 49 s)"
        );
        assert!(budget.over_limits().is_empty());
    }

    #[test]
    fn a_huge_sweep_is_counted_without_expanding_it() {
        let values: Vec<String> = (1..=100).map(|v| v.to_string()).collect();
        let list = values.join(", ");
        let text = format!(
            "name = \"s\"\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nparams = {{ step_ms = [{list}], jitter_ms = [{list}], setup_ms = [{list}] }}\n"
        );
        let budget = Budget::of(&scenario(&text));
        assert_eq!(budget.n_runs, 6_000_000);
        assert_eq!(
            budget.over_limits(),
            vec![
                "6000000 runs is more than the limit of 10000".to_string(),
                "about 868 days is more than the limit of 24 h".to_string()
            ]
        );
    }

    #[test]
    fn a_replica_sweep_counts_its_points_its_largest_run_and_only_the_replicas_measured_alone() {
        let text = "name = \"s\"\n[run]\nrepetitions = 1\nduration_s = 2.0\nwarmup_s = 0.5\nexclusive_replicas = 1\n[[modes]]\nmode = \"time-slicing\"\n[[tenants]]\nname = \"t\"\nworkload = \"cpu.synthetic\"\nreplicas = [1, 2, 4, 8, 16]\n";
        let scenario = crate::scenario::parse(std::path::Path::new("s.toml"), text).unwrap();
        let budget = Budget::of(&scenario);
        assert_eq!(budget.n_configs, 5);
        assert_eq!(budget.n_runs, 10);
        assert_eq!(budget.n_workers, 16);
        let window_s = OVERHEAD_PER_WINDOW_S + 2.5;
        // One replica alone per configuration, then one shared window.
        assert!((budget.exclusive_s - 5.0 * window_s).abs() < 1e-9);
        assert!((budget.estimated_s - 10.0 * window_s).abs() < 1e-9);
    }

    #[test]
    fn many_tenants_make_the_exclusive_baseline_long_and_are_refused() {
        let mut text = "name = \"s\"\n[run]\nrepetitions = 1\nduration_s = 2.0\nwarmup_s = 0.5\n[[modes]]\nmode = \"time-slicing\"\n".to_string();
        for idx in 0..10_000 {
            text.push_str(&format!(
                "[[tenants]]\nname = \"t{idx}\"\nworkload = \"cpu.synthetic\"\n"
            ));
        }
        let budget = Budget::of(&scenario(&text));
        assert_eq!(budget.n_workers, 10_000);
        assert_eq!(wall_time(budget.exclusive_s), "8.3 h");
        assert_eq!(
            budget.over_limits(),
            vec!["10000 workers per run is more than the limit of 1024".to_string()]
        );
    }

    #[test]
    fn wall_times_read_in_their_unit() {
        assert_eq!(wall_time(25.0), "25 s");
        assert_eq!(wall_time(720.0), "12 min");
        assert_eq!(wall_time(30_000.0), "8.3 h");
        assert_eq!(wall_time(86_400.0), "24 h");
        assert_eq!(wall_time(86_400.0 * 41.0), "41 days");
        assert_eq!(wall_time(f64::INFINITY), "forever");
    }
}
