//! A row per node and group (mode x configuration), and for each group that more than one
//! node ran an "all nodes" row whose intervals are taken across the nodes' means:
//! node-to-node spread, which repetitions on one node cannot show. A group only one node
//! ran (a configuration of one shard) has its node's row alone.

use std::collections::BTreeMap;

use super::NodeStudy;
use crate::metrics::{self, Estimate};

/// One node's (or all nodes') figures for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// `node0 (host)`, `node1 (host, shard 1/3)`, or `all nodes`.
    pub node: String,
    /// The mode as reports show it, with the configuration: `time-slicing c0`.
    pub group: String,
    /// VALID runs over runs.
    pub valid: (usize, usize),
    /// System throughput (unitless): the node's estimate over its repetitions, or for
    /// `all nodes` the estimate over the nodes' means.
    pub stp: Option<Estimate>,
    /// Each tenant's throughput, in items per second, likewise.
    pub throughput: Vec<(String, Option<Estimate>)>,
}

/// Per-node rows, then one `all nodes` row per group that several nodes ran.
pub fn node_rows(nodes: &[NodeStudy]) -> Vec<NodeRow> {
    let mut rows = vec![];
    let mut per_group: BTreeMap<(usize, String), Vec<NodeRow>> = BTreeMap::new();
    let mut order: Vec<(usize, String)> = vec![];
    for (idx, node) in nodes.iter().enumerate() {
        let analysis = metrics::analyze(&node.study);
        for group in &analysis.groups {
            let label = format!("{} c{}", group.mode, group.config_idx);
            let row = NodeRow {
                node: format!(
                    "node{idx} ({}{})",
                    node.study.environment.host,
                    node.study
                        .shard
                        .map_or_else(String::new, |s| format!(", shard {s}"))
                ),
                group: label.clone(),
                valid: (group.n_valid, group.n_runs),
                stp: group.stp,
                throughput: group
                    .tenants
                    .iter()
                    .map(|t| (t.name.clone(), t.throughput_items_per_s))
                    .collect(),
            };
            let key_idx = order
                .iter()
                .position(|(_, l)| *l == label)
                .unwrap_or_else(|| {
                    order.push((order.len(), label.clone()));
                    order.len() - 1
                });
            per_group
                .entry((key_idx, label))
                .or_default()
                .push(row.clone());
            rows.push(row);
        }
    }
    for ((_, label), group_rows) in per_group {
        if group_rows.len() < 2 {
            continue;
        }
        let means = |f: &dyn Fn(&NodeRow) -> Option<f64>| -> Option<Estimate> {
            let values: Vec<f64> = group_rows.iter().filter_map(f).collect();
            Estimate::of(&values)
        };
        let tenant_names: Vec<String> = group_rows[0]
            .throughput
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        rows.push(NodeRow {
            node: "all nodes".to_string(),
            group: label,
            valid: group_rows
                .iter()
                .fold((0, 0), |(v, n), r| (v + r.valid.0, n + r.valid.1)),
            stp: means(&|r| r.stp.map(|e| e.mean)),
            throughput: tenant_names
                .iter()
                .map(|name| {
                    let est = means(&|r| {
                        r.throughput
                            .iter()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, e)| e.map(|e| e.mean))
                    });
                    (name.clone(), est)
                })
                .collect(),
        });
    }
    rows
}

fn estimate(e: &Option<Estimate>) -> String {
    match e {
        Some(e) if e.n > 1 => format!("{:.3} [{:.3}, {:.3}]", e.mean, e.ci_low, e.ci_high),
        Some(e) => format!("{:.3}", e.mean),
        None => "-".to_string(),
    }
}

/// The rows as a Markdown table: node, group, VALID runs, STP, each tenant's throughput.
pub fn render_node_rows(rows: &[NodeRow]) -> String {
    let mut out = String::from(
        "| node | mode | valid | STP [95% CI] | throughput per tenant, items/s [95% CI] |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let tenants: Vec<String> = row
            .throughput
            .iter()
            .map(|(name, e)| format!("{name} {}", estimate(e)))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} |\n",
            row.node,
            row.group,
            row.valid.0,
            row.valid.1,
            estimate(&row.stp),
            tenants.join("; ")
        ));
    }
    out
}
