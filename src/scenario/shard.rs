//! Sharding a sweep over several runners (the indices of a `k8s render --nodes N
//! --per-node shard` Job, or hosts given `gpushare run --shard I/N`).
//!
//! Shard `I` of `N` holds the configurations whose index `c` has `c mod N == I`:
//! round-robin over the plan's configuration order, so the assignment depends only on the
//! scenario's sweep (the same file always shards the same way) and neighbouring sweep
//! points, which tend to cost alike, land on different shards. A shard keeps every mode
//! and repetition of its configurations: the exclusive baseline of a configuration runs on
//! the same runner as its shared runs, since NP divides one by the other.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::ScenarioError;
use super::plan::Plan;

/// Shard `index` of `count`, checked against a plan's configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Counts from 0.
    pub index: u32,
    pub count: u32,
}

/// `I/N` as given on the command line: in range, not yet checked against a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `I/N` (shard I of N, from 0), refusing 0 shards and an index out of range.
pub fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    let usage = "write I/N: shard I of N, counting from 0 (0/3, 1/3, 2/3)";
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("expected I/N, got `{text}`; {usage}"))?;
    let number = |part: &str, what: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("{what} `{part}` is not a whole number; {usage}"))
    };
    let index = number(index, "shard index")?;
    let count = number(count, "shard count")?;
    check_range(index, count)?;
    Ok(ShardSpec { index, count })
}

/// The rules every `I/N` obeys, whatever the plan: at least 1 shard, and I below N.
fn check_range(index: u32, count: u32) -> Result<(), String> {
    if count == 0 {
        return Err("0 shards: a sweep needs at least 1 shard".to_string());
    }
    if index >= count {
        return Err(format!(
            "shard index {index} is out of range for {count} shard(s): use 0 to {}",
            count - 1
        ));
    }
    Ok(())
}

/// Refuses more shards than the scenario has configurations: a shard would run nothing.
pub fn check_count(scenario: &str, count: u32, n_configs: usize) -> Result<(), ScenarioError> {
    let refuse = |reason| ScenarioError::Shard {
        scenario: scenario.to_string(),
        reason,
    };
    check_range(0, count).map_err(refuse)?;
    if count as usize > n_configs {
        return Err(refuse(format!(
            "{count} shards but the sweep has {n_configs} configuration(s), so a shard would run nothing: \
             use at most {n_configs} shard(s), or run the whole scenario on every node instead \
             (repetitions across nodes: `k8s render --per-node whole`, or `run` without --shard)"
        )));
    }
    Ok(())
}

impl Shard {
    /// Checks `spec` against the plan's configurations.
    pub fn new(scenario: &str, spec: ShardSpec, n_configs: usize) -> Result<Shard, ScenarioError> {
        check_count(scenario, spec.count, n_configs)?;
        check_range(spec.index, spec.count).map_err(|reason| ScenarioError::Shard {
            scenario: scenario.to_string(),
            reason,
        })?;
        Ok(Shard {
            index: spec.index,
            count: spec.count,
        })
    }

    /// Whether configuration `config_idx` belongs to this shard.
    pub fn holds(&self, config_idx: usize) -> bool {
        config_idx % self.count as usize == self.index as usize
    }

    /// The configurations of a plan of `n_configs` this shard holds, in plan order.
    pub fn configs(&self, n_configs: usize) -> Vec<usize> {
        (0..n_configs).filter(|&c| self.holds(c)).collect()
    }
}

impl Plan {
    /// Keeps only the runs of `shard`'s configurations (every mode and repetition of each,
    /// in the same order). The configurations themselves all stay, so `c<i>` names the
    /// same sweep point in every shard and merged shards line up.
    pub fn shard(&mut self, shard: Shard) {
        self.runs.retain(|run| shard.holds(run.config_idx));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn sweep(n_points: usize) -> Plan {
        let steps: Vec<String> = (1..=n_points).map(|i| format!("{i}.0")).collect();
        let text = format!(
            "name = \"s\"\n[run]\nrepetitions = 2\n[[modes]]\nmode = \"exclusive\"\n[[modes]]\nmode = \"time-slicing\"\n\
             [[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\nparams = {{ step_ms = [{}] }}\n\
             [[tenants]]\nname = \"b\"\nworkload = \"cpu.synthetic\"\n",
            steps.join(", ")
        );
        Plan::expand(&crate::scenario::parse(Path::new("s.toml"), &text).unwrap())
    }

    #[test]
    fn shards_take_configurations_round_robin_with_every_mode_and_repetition() {
        let full = sweep(5);
        let mut seen = vec![];
        for index in 0..3 {
            let shard = Shard::new("s", ShardSpec { index, count: 3 }, 5).unwrap();
            let mut plan = full.clone();
            plan.shard(shard);
            let configs: Vec<usize> = plan.runs.iter().map(|r| r.config_idx).collect();
            assert!(configs.iter().all(|&c| c % 3 == index as usize));
            let expected: &[usize] = [&[0, 3][..], &[1, 4], &[2]][index as usize];
            assert_eq!(shard.configs(5), expected);
            // Both modes (the exclusive baseline with its shared runs) and both repetitions.
            for &c in &shard.configs(5) {
                let of_c: Vec<&str> = plan
                    .runs
                    .iter()
                    .filter(|r| r.config_idx == c)
                    .map(|r| r.id.as_str())
                    .collect();
                assert_eq!(of_c.len(), 4, "{of_c:?}");
            }
            assert_eq!(plan.configs, full.configs);
            seen.extend(plan.runs.into_iter().map(|r| r.id));
        }
        // Together the shards run the whole plan, each run once.
        seen.sort();
        let mut all: Vec<String> = full.runs.into_iter().map(|r| r.id).collect();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn bad_shards_are_refused_with_what_to_do() {
        assert_eq!(parse_shard("1/3"), Ok(ShardSpec { index: 1, count: 3 }));
        assert_eq!(
            parse_shard("3/3").unwrap_err(),
            "shard index 3 is out of range for 3 shard(s): use 0 to 2"
        );
        assert_eq!(
            parse_shard("0/0").unwrap_err(),
            "0 shards: a sweep needs at least 1 shard"
        );
        assert_eq!(
            parse_shard("2").unwrap_err(),
            "expected I/N, got `2`; write I/N: shard I of N, counting from 0 (0/3, 1/3, 2/3)"
        );
        assert_eq!(
            parse_shard("$(GPUSHARE_SHARD_INDEX)/3").unwrap_err(),
            "shard index `$(GPUSHARE_SHARD_INDEX)` is not a whole number; write I/N: shard I of N, counting from 0 (0/3, 1/3, 2/3)"
        );
        assert_eq!(
            Shard::new("s", ShardSpec { index: 0, count: 4 }, 3)
                .unwrap_err()
                .to_string(),
            "sharding scenario `s`: 4 shards but the sweep has 3 configuration(s), so a shard would run nothing: \
             use at most 3 shard(s), or run the whole scenario on every node instead (repetitions across \
             nodes: `k8s render --per-node whole`, or `run` without --shard)"
        );
        assert!(Shard::new("s", ShardSpec { index: 2, count: 3 }, 3).is_ok());
    }
}
