//! The H200 figures the documentation states, checked against what `gpushare report`
//! prints today from the committed raw results, so a stale figure fails CI.
//!
//! Each claim is a line of `results/h200/README.md` written as a template: `{T:mode:
//! tenant:column}` is a cell of the report's Tenants table, `{S:mode:column}` one of its
//! Sharing table, with `|mean` (the mean without its CI), `|int` (the mean rounded to a
//! whole number) or `|pct` (rounded, with a `%`). The test renders each study as
//! Markdown, fills the template in, and requires the documentation to contain the line.
//! A failure prints the line as it should read.

use std::collections::BTreeMap;
use std::path::Path;

use gpushare::report::{self, Format};
use gpushare::results::store::read_study;

use crate::common::root;

const DOC: &str = "results/h200/README.md";

/// A rendered Markdown report's tables: heading (its first word) -> rows of cells by
/// column name.
type Tables = BTreeMap<String, Vec<BTreeMap<String, String>>>;

fn tables(markdown: &str) -> Tables {
    let mut out = Tables::new();
    let mut heading = String::new();
    let mut columns: Vec<String> = vec![];
    for line in markdown.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.split_whitespace().next().unwrap_or("").to_string();
            columns.clear();
            continue;
        }
        if !line.starts_with('|') {
            columns.clear();
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if columns.is_empty() {
            columns = cells;
        } else if !cells[0].starts_with("---") {
            let row = columns.iter().cloned().zip(cells).collect();
            out.entry(heading.clone()).or_default().push(row);
        }
    }
    out
}

/// The value of one placeholder (without its braces).
fn cell(tables: &Tables, placeholder: &str) -> String {
    let (path, modifier) = placeholder
        .split_once('|')
        .map_or((placeholder, ""), |(p, m)| (p, m));
    let parts: Vec<&str> = path.split(':').collect();
    let (table, keys, column) = match parts.as_slice() {
        ["T", mode, tenant, column] => (
            "Tenants",
            vec![("mode", *mode), ("tenant", *tenant)],
            *column,
        ),
        ["S", mode, column] => ("Sharing", vec![("mode", *mode)], *column),
        _ => panic!("bad placeholder {{{placeholder}}}"),
    };
    let rows = tables
        .get(table)
        .unwrap_or_else(|| panic!("no {table} table"));
    let row = rows
        .iter()
        .find(|r| {
            keys.iter()
                .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {table} row {keys:?}"));
    let value = row
        .get(column)
        .unwrap_or_else(|| panic!("no column {column:?} in {table}: {row:?}"));
    let mean = value.split(" [").next().unwrap_or(value).to_string();
    let number = || -> f64 {
        mean.trim_end_matches('%')
            .parse()
            .unwrap_or_else(|_| panic!("{value:?} is not a number"))
    };
    match modifier {
        "" => value.clone(),
        "mean" => mean,
        "int" => format!("{:.0}", number()),
        "pct" => format!("{:.0}%", number()),
        other => panic!("bad modifier {other}"),
    }
}

fn fill(tables: &Tables, template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed placeholder") + start;
        out.push_str(&cell(tables, &rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn check(study: &str, claims: &[&str]) {
    let dir = root().join("results/h200").join(study);
    let study = read_study(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let tables = tables(&report::render(&study, Format::Markdown));
    let doc = std::fs::read_to_string(root().join(DOC)).unwrap();
    let stale: Vec<String> = claims
        .iter()
        .map(|claim| fill(&tables, claim))
        .filter(|line| !doc.contains(line.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "{} does not state what `gpushare report {}` prints; it should contain:\n{}",
        DOC,
        Path::new("results/h200")
            .join(dir.file_name().unwrap())
            .display(),
        stale.join("\n")
    );
}

#[test]
fn probes_mix_figures_match_their_study() {
    let mut claims = vec![
        "| {T:exclusive:compute:NP|mean} ({T:exclusive:compute:throughput (items/s)|mean} GFLOP/s) | {T:exclusive:memory:NP|mean} ({T:exclusive:memory:throughput (items/s)|mean} GB/s) | {T:exclusive:latency:NP|mean} ({T:exclusive:latency:throughput (items/s)|mean}/s) | {T:exclusive:latency:P99 ms} ms | - | - | - | {S:exclusive:GPU util %|pct} | - |".to_string(),
        "sharing did the same work with {S:time-slicing:energy gain|mean}x (time-slicing) to {S:mps:energy gain|mean}x (MPS) less GPU".to_string(),
        "the highest STP of the four ({S:mps(atp=50):STP})".to_string(),
    ];
    for (mode, label) in [
        ("time-slicing", "time-slicing"),
        ("mps", "mps"),
        ("mps(atp=50)", "mps, 50% SMs each"),
    ] {
        claims.push(format!(
            "| {label} | {{T:{mode}:compute:NP}} | {{T:{mode}:memory:NP}} | {{T:{mode}:latency:NP|mean}} | {{T:{mode}:latency:P99 ms}} ms | {{S:{mode}:STP}} | {{S:{mode}:ANTT|mean}} | {{S:{mode}:fairness|mean}} | {{S:{mode}:GPU util %|pct}} | {{S:{mode}:energy gain|mean}} |"
        ));
    }
    let claims: Vec<&str> = claims.iter().map(String::as_str).collect();
    check("2026-11-29-probes-mix", &claims);
}

#[test]
fn bert_service_next_to_training_figures_match_their_study() {
    let mut claims = vec![
        "| exclusive (alone) | {T:exclusive:bert-serve:P50 ms} / {T:exclusive:bert-serve:P99 ms} ms | {T:exclusive:bert-serve:SLO attained|pct}, {T:exclusive:bert-serve:SLO met} met | {T:exclusive:resnet-train:NP|mean} ({T:exclusive:resnet-train:throughput (items/s)|mean} images/s) | - | {S:exclusive:GPU util %}% |".to_string(),
    ];
    for (mode, label) in [
        ("time-slicing", "time-slicing"),
        ("mps", "MPS"),
        ("mps(atp=50)", "MPS, 50% SMs each"),
    ] {
        claims.push(format!(
            "| {label} | {{T:{mode}:bert-serve:P50 ms}} / {{T:{mode}:bert-serve:P99 ms}} ms | {{T:{mode}:bert-serve:SLO attained|pct}}, {{T:{mode}:bert-serve:SLO met}} met | {{T:{mode}:resnet-train:NP|mean}} | {{S:{mode}:STP}} | {{S:{mode}:GPU util %}}% |"
        ));
    }
    let claims: Vec<&str> = claims.iter().map(String::as_str).collect();
    check("2026-11-29-resnet50-train-bert-serve", &claims);
}

#[test]
fn notebook_figures_match_their_study() {
    let mut claims = vec![
        "| exclusive (alone) | {T:exclusive:notebook:P50 ms} ms | {T:exclusive:notebook:SLO attained|pct}, {T:exclusive:notebook:SLO met} met | {T:exclusive:training:NP|mean} ({T:exclusive:training:throughput (items/s)|mean} images/s) | - | {S:exclusive:GPU util %}% |".to_string(),
    ];
    for (mode, label) in [
        ("time-slicing", "time-slicing"),
        ("mps", "MPS"),
        ("mps(atp=50)", "MPS, 50% SMs each"),
    ] {
        claims.push(format!(
            "| {label} | {{T:{mode}:notebook:P50 ms}} ms | {{T:{mode}:notebook:SLO attained|pct}}, {{T:{mode}:notebook:SLO met}} met | {{T:{mode}:training:NP|mean}} | {{S:{mode}:STP}} | {{S:{mode}:GPU util %}}% |"
        ));
    }
    let claims: Vec<&str> = claims.iter().map(String::as_str).collect();
    check("2026-11-29-notebook-vs-training", &claims);
}
