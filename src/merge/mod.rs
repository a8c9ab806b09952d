//! `gpushare merge`: studies of one scenario from several nodes or hosts (the indices of
//! a `k8s render --nodes` Job, or `gpushare run` on several machines) become one study,
//! with a row per node and intervals across nodes (`nodes.rs`).
//!
//! The studies may each hold the whole sweep (repetitions across nodes) or a shard of it
//! (`run --shard I/N`), or a mix: the merged study's configurations are the union of
//! theirs. Per configuration, the `k`-th study that ran it has its repetition `r`
//! renumbered `k * repetitions + r`, and every run id is prefixed with `node<i>/`: the
//! merged study's groups (mode x configuration) then pool every node that ran them, and so
//! do their exclusive baselines, which a shard runs beside its shared runs. Studies of
//! different scenarios or GPU models are refused: their figures do not measure the same
//! thing.
//!
//! **Invariant:** reads studies and writes only the merged one; measures nothing.

mod nodes;

pub use nodes::{node_rows, render_node_rows, NodeRow};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::results::schema::Study;
use crate::results::store::{self, StoreError};

/// Errors from merging studies.
#[derive(Debug, Error)]
pub enum MergeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("merging studies: give at least two study directories, got {0}")]
    TooFew(usize),
    #[error(
        "merging studies: {other} ran scenario `{other_name}`, {first} ran `{first_name}`{detail}; merge studies of one scenario only"
    )]
    Scenario {
        first: PathBuf,
        first_name: String,
        other: PathBuf,
        other_name: String,
        /// `` (a different version of it)`` when the names agree but the scenarios do not.
        detail: String,
    },
    #[error(
        "merging studies: {other} ran on {other_gpu}, {first} on {first_gpu}; merge studies of one GPU model only"
    )]
    GpuModel {
        first: PathBuf,
        first_gpu: String,
        other: PathBuf,
        other_gpu: String,
    },
}

/// One study and where it was read from.
#[derive(Debug, Clone)]
pub struct NodeStudy {
    pub dir: PathBuf,
    pub study: Study,
}

/// The GPU model a study ran on, as its monitor recorded it; `None` when no GPU was
/// monitored (CPU tenants, or the monitor off).
pub fn gpu_model(study: &Study) -> Option<String> {
    study
        .runs
        .iter()
        .filter_map(|r| r.monitor.as_ref()?.gpu_name.clone())
        .next()
}

fn describe_gpu(model: &Option<String>) -> String {
    match model {
        Some(name) => name.clone(),
        None => "no monitored GPU".to_string(),
    }
}

/// Reads each directory's study.
pub fn read_all(dirs: &[PathBuf]) -> Result<Vec<NodeStudy>, MergeError> {
    dirs.iter()
        .map(|dir| {
            Ok(NodeStudy {
                dir: dir.clone(),
                study: store::read_study(dir)?,
            })
        })
        .collect()
}

/// Checks the studies agree on scenario and GPU model, then merges them.
pub fn merge(nodes: &[NodeStudy]) -> Result<Study, MergeError> {
    let [first, rest @ ..] = nodes else {
        return Err(MergeError::TooFew(0));
    };
    if rest.is_empty() {
        return Err(MergeError::TooFew(1));
    }
    let first_gpu = gpu_model(&first.study);
    for other in rest {
        if other.study.scenario != first.study.scenario {
            let same_name = other.study.scenario.name == first.study.scenario.name;
            return Err(MergeError::Scenario {
                first: first.dir.clone(),
                first_name: first.study.scenario.name.clone(),
                other: other.dir.clone(),
                other_name: other.study.scenario.name.clone(),
                detail: if same_name {
                    " (a different version of it)".to_string()
                } else {
                    String::new()
                },
            });
        }
        let other_gpu = gpu_model(&other.study);
        if other_gpu != first_gpu {
            return Err(MergeError::GpuModel {
                first: first.dir.clone(),
                first_gpu: describe_gpu(&first_gpu),
                other: other.dir.clone(),
                other_gpu: describe_gpu(&other_gpu),
            });
        }
    }
    let reps = first.study.scenario.run.repetitions;
    let mut merged = first.study.clone();
    merged.runs.clear();
    merged.plan.runs.clear();
    merged.shard = None;
    merged.interrupted = false;
    let mut hosts = vec![];
    // How many studies so far ran each configuration: the next one's repetitions follow.
    let mut contributors: BTreeMap<usize, u32> = BTreeMap::new();
    for (node_idx, node) in nodes.iter().enumerate() {
        hosts.push(node.study.environment.host.clone());
        merged.interrupted |= node.study.interrupted;
        let offsets: BTreeMap<usize, u32> = planned_configs(&node.study)
            .into_iter()
            .map(|config_idx| {
                let rank = contributors.entry(config_idx).or_default();
                *rank += 1;
                (config_idx, (*rank - 1) * reps)
            })
            .collect();
        for planned in &node.study.plan.runs {
            let mut planned = planned.clone();
            planned.id = format!("node{node_idx}/{}", planned.id);
            planned.repetition += offsets.get(&planned.config_idx).copied().unwrap_or(0);
            merged.plan.runs.push(planned);
        }
        for run in &node.study.runs {
            let mut run = run.clone();
            run.id = format!("node{node_idx}/{}", run.id);
            // A run outside the study's plan (a hand-edited file) keeps its repetition.
            run.repetition += offsets.get(&run.config_idx).copied().unwrap_or(0);
            merged.runs.push(run);
        }
    }
    merged.scenario.run.repetitions = reps * contributors.values().copied().max().unwrap_or(1);
    merged.environment.host = format!("merged: {}", hosts.join(", "));
    merged.started_at = nodes
        .iter()
        .map(|n| n.study.started_at.clone())
        .min()
        .unwrap_or_default();
    merged.finished_at = nodes
        .iter()
        .map(|n| n.study.finished_at.clone())
        .max()
        .flatten();
    merged.analysis = None;
    Ok(merged)
}

/// The configurations a study planned to run: all of its sweep, or its shard's.
fn planned_configs(study: &Study) -> BTreeSet<usize> {
    study.plan.runs.iter().map(|r| r.config_idx).collect()
}

/// Which studies ran which configurations of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Configurations in the sweep.
    pub n_configs: usize,
    /// For each configuration the studies ran, the indices (in merge order) of those that did.
    pub by_config: BTreeMap<usize, Vec<usize>>,
}

impl Coverage {
    pub fn of(nodes: &[NodeStudy]) -> Coverage {
        let mut by_config: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (node_idx, node) in nodes.iter().enumerate() {
            for config_idx in planned_configs(&node.study) {
                by_config.entry(config_idx).or_default().push(node_idx);
            }
        }
        Coverage {
            n_configs: nodes.first().map_or(0, |n| n.study.plan.configs.len()),
            by_config,
        }
    }

    /// Configurations of the sweep no study ran (a shard missing from the merge).
    pub fn missing(&self) -> Vec<usize> {
        (0..self.n_configs)
            .filter(|c| !self.by_config.contains_key(c))
            .collect()
    }

    /// One sentence for the merge's heading.
    pub fn sentence(&self) -> String {
        let missing = self.missing();
        let on_several = self.by_config.values().filter(|n| n.len() > 1).count();
        let mut out = format!(
            "{} of the sweep's {} configuration(s) ran, {on_several} of them on more than one node",
            self.by_config.len(),
            self.n_configs
        );
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|c| format!("c{c}")).collect();
            out.push_str(&format!(
                "; no study ran {}: merge the shard(s) that hold them to complete the sweep",
                names.join(", ")
            ));
        }
        out
    }
}

/// Writes the merged study to `dir/run.json`.
pub fn write(dir: &Path, study: &Study) -> Result<PathBuf, MergeError> {
    let path = dir.join(store::RUN_FILE);
    let mut study = study.clone();
    // Plain data with string keys: serializing it cannot fail.
    study.analysis = serde_json::to_value(crate::metrics::analyze(&study)).ok();
    store::write_study(&path, &study)?;
    Ok(path)
}
