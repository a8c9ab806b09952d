//! The H200 figures the documentation states, checked against what `gpushare report`
//! prints today from the committed raw results, so a stale figure fails CI.
//!
//! Every study committed under `results/h200/` (a `run.json` or `run.json.gz`, or a file
//! named `*run.json.gz` that `gpushare report` reads by its path) has a list of claims in
//! `claims.rs`: lines of the documentation written as templates of the report's figures
//! (syntax in `figures.rs`). Each study's test renders it, fills its claims in and
//! requires the named document to contain each (whitespace and line breaks collapsed, so
//! a claim may span a wrapped line). A failure prints each line as it should read.
//! `every_committed_study_has_claims` fails when a study is committed without claims, or
//! a listed study is gone. Raw files whose figures the documentation quotes (`FIGURE`
//! lines of the GPU logs, the `mps` bench's launch-latency table, the load generator's
//! JSON reports, the serving side-by-side JSON lines) are checked the same way
//! (`raw_files!`).

mod claims;
mod figures;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gpushare::metrics;
use gpushare::report::charts;
use gpushare::results::store::read_study;

use crate::common::root;
use figures::Figures;

/// Where the committed H200 studies live, relative to the repository.
const STUDIES_DIR: &str = "results/h200";

/// What a document says about a study.
pub enum Claim {
    /// A line of a document, as a template of the study's figures.
    Text { doc: &'static str, template: String },
    /// A committed chart: what `gpushare report --format svg --chart NAME` draws.
    Chart {
        file: &'static str,
        chart: &'static str,
    },
}

/// A claim of `results/h200/README.md`.
pub fn h200(template: impl Into<String>) -> Claim {
    claim("results/h200/README.md", template)
}

/// A claim of the top-level `README.md`.
pub fn readme(template: impl Into<String>) -> Claim {
    claim("README.md", template)
}

pub fn claim(doc: &'static str, template: impl Into<String>) -> Claim {
    Claim::Text {
        doc,
        template: template.into(),
    }
}

/// A chart committed as `file` that must be the study's chart `name`.
pub fn chart(file: &'static str, name: &'static str) -> Claim {
    Claim::Chart { file, chart: name }
}

/// The same template for each `(mode, label)`: `$mode` and `$label` are replaced first.
pub fn per_mode(make: fn(String) -> Claim, modes: &[(&str, &str)], template: &str) -> Vec<Claim> {
    modes
        .iter()
        .map(|(mode, label)| make(template.replace("$mode", mode).replace("$label", label)))
        .collect()
}

/// One test per study, and the list every committed study must be in.
macro_rules! studies {
    ($($test:ident: $dir:literal => $claims:path;)*) => {
        /// Every committed study, as its path under `results/h200/`.
        const STUDIES: &[&str] = &[$($dir),*];
        $(
            #[test]
            fn $test() {
                check($dir, $claims());
            }
        )*
    };
}

/// One test per raw file (a log or a load report, not a study) whose figures the
/// documentation quotes.
macro_rules! raw_files {
    ($($test:ident: $file:literal => $claims:path;)*) => {
        $(
            #[test]
            fn $test() {
                check_raw($file, $claims());
            }
        )*
    };
}

studies! {
    probes_mix: "2026-11-29-probes-mix" => claims::probes_mix;
    bench_mps: "2026-11-29-bench-mps" => claims::bench_mps;
    probes_sharing: "2026-11-29-gpu-check/probes-sharing" => claims::probes_sharing;
    resnet50_train_x2: "2026-11-29-resnet50-train-x2" => claims::resnet50_train_x2;
    resnet50_train_bert_infer: "2026-11-29-resnet50-train-bert-infer" => claims::resnet50_train_bert_infer;
    gpt2_train_vit_infer: "2026-11-29-gpt2-train-vit-infer" => claims::gpt2_train_vit_infer;
    resnet50_train_bert_serve: "2026-11-29-resnet50-train-bert-serve" => claims::resnet50_train_bert_serve;
    notebook_vs_training: "2026-11-29-notebook-vs-training" => claims::notebook_vs_training;
    torch_overhead: "2026-11-29-torch/overhead" => claims::torch_overhead;
    serve_resnet50_twin_run1: "2026-11-29-serve/1-resnet50-before-fix-16-connections/infer-batch-run.json.gz" => claims::serve_resnet50_twin_run1;
    serve_bert_twin: "2026-11-29-serve/2-bert-base/infer-batch-run.json.gz" => claims::serve_bert_twin;
    serve_resnet50_twin_run2: "2026-11-29-serve/2-resnet50-before-staging/infer-batch-run.json.gz" => claims::serve_resnet50_twin_run2;
    serve_resnet50_twin_run3: "2026-11-29-serve/3-resnet50-pinned-staging/infer-batch-run.json.gz" => claims::serve_resnet50_twin_run3;
    bench_suite_probes: "2026-12-02-bench-mps/bench-mps-20261202-024311" => claims::bench_suite_probes;
    bench_suite_resnet50_train_x2: "2026-12-02-bench-mps/bench-mps-resnet50-train-x2-20261202-024613" => claims::bench_suite_resnet50_train_x2;
    bench_suite_resnet50_train_bert_infer: "2026-12-02-bench-mps/bench-mps-resnet50-train-bert-infer-20261202-024837" => claims::bench_suite_resnet50_train_bert_infer;
    bench_suite_gpt2_train_vit_infer: "2026-12-02-bench-mps/bench-mps-gpt2-train-vit-infer-20261202-025030" => claims::bench_suite_gpt2_train_vit_infer;
    occupancy: "2026-12-02-measure/occupancy" => claims::occupancy;
    occupancy_hold: "2026-12-02-occupancy-hold" => claims::occupancy_hold;
    interval: "2026-12-02-measure/interval" => claims::interval;
    scaling: "2026-12-02-measure/scaling" => claims::scaling;
    serve_scaling: "2026-12-02-serve-scaling" => claims::serve_scaling;
}

raw_files! {
    probe_quality_log: "2026-11-29-gpu-check/tests.log" => claims::probe_quality_log;
    launch_latency_log: "2026-11-29-bench-mps/bench.out" => claims::launch_latency_log;
    monitor_bench_log: "2026-11-29-gpu-check-2/monitor-bench.log" => claims::monitor_bench_log;
    monitor_every_tick_log: "2026-11-29-gpu-check-2/monitor-bench-every-tick.log" => claims::monitor_every_tick_log;
    sharing_tests_log: "2026-11-29-gpu-check-2/sharing-tests.log" => claims::sharing_tests_log;
    serve_bert_saturation: "2026-11-29-serve/2-bert-base/saturation.json" => claims::serve_bert_saturation;
    serve_bert_p99_batched: "2026-11-29-serve/2-bert-base/p99-batch32.json" => claims::serve_bert_p99_batched;
    serve_bert_p99_unbatched: "2026-11-29-serve/2-bert-base/p99-batch1.json" => claims::serve_bert_p99_unbatched;
    serve_resnet50_saturation_before_staging: "2026-11-29-serve/2-resnet50-before-staging/saturation.json" => claims::serve_resnet50_saturation_before_staging;
    serve_resnet50_saturation: "2026-11-29-serve/3-resnet50-pinned-staging/saturation.json" => claims::serve_resnet50_saturation;
    serve_resnet50_p99_batched: "2026-11-29-serve/3-resnet50-pinned-staging/p99-batch32.json" => claims::serve_resnet50_p99_batched;
    serve_resnet50_p99_unbatched: "2026-11-29-serve/3-resnet50-pinned-staging/p99-batch1.json" => claims::serve_resnet50_p99_unbatched;
    serve_side_by_side: "2026-12-02-serve-side-by-side/runs.jsonl" => claims::serve_side_by_side;
    serve_side_by_side_2: "2026-12-02-serve-side-by-side-2/runs.jsonl" => claims::serve_side_by_side_2;
    serve_side_by_side_3: "2026-12-02-serve-side-by-side-3/runs.jsonl" => claims::serve_side_by_side_3;
    serve_side_by_side_4: "2026-12-02-serve-side-by-side-4/runs.jsonl" => claims::serve_side_by_side_4;
    serve_in_flight_1: "2026-12-02-serve-in-flight-p99/p99-1-inflight2.json" => claims::serve_in_flight_1;
    serve_in_flight_2: "2026-12-02-serve-in-flight-p99/p99-2-inflight1.json" => claims::serve_in_flight_2;
    serve_in_flight_3: "2026-12-02-serve-in-flight-p99/p99-3-inflight1.json" => claims::serve_in_flight_3;
    serve_graphs_resnet50: "2026-12-03-serve-graphs-resnet50/runs.jsonl" => claims::serve_graphs_resnet50;
    serve_graphs_bert_base: "2026-12-03-serve-graphs-bert-base/runs.jsonl" => claims::serve_graphs_bert_base;
}

fn check(study: &str, claims: Vec<Claim>) {
    let path = root().join(STUDIES_DIR).join(study);
    let study_data = read_study(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let analysis = metrics::analyze(&study_data);
    let figures = Figures::of(&study_data, &analysis);
    let mut problems = verify(&figures, &claims);
    for claim in &claims {
        if let Claim::Chart { file, chart } = claim {
            let drawn = charts::render(&study_data, &analysis, chart).unwrap();
            let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
            if drawn != committed {
                problems.push(format!(
                    "{file} is not the chart `gpushare report {STUDIES_DIR}/{study} --format \
                     svg --chart {chart}` draws: redraw it with that command"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the documentation does not state what `gpushare report {STUDIES_DIR}/{study}` \
         prints (fix the document to the report's figure, or the claim in \
         tests/it/readme_figures/claims.rs if the sentence changed):\n{}",
        problems.join("\n")
    );
}

fn check_raw(file: &str, claims: Vec<Claim>) {
    let path = root().join(STUDIES_DIR).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let figures = if file.ends_with(".json") {
        Figures::of_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    } else if file.ends_with(".jsonl") {
        Figures::of_json_lines(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    } else {
        Figures::of_log(&text)
    };
    let problems = verify(&figures, &claims);
    assert!(
        problems.is_empty(),
        "the documentation does not state what {STUDIES_DIR}/{file} recorded:\n{}",
        problems.join("\n")
    );
}

/// What is wrong with each text claim: a template that does not fill, or a document that
/// does not contain it filled in. Claims must not be empty.
fn verify(figures: &Figures, claims: &[Claim]) -> Vec<String> {
    assert!(
        !claims.is_empty(),
        "no claims: quote the figures and list them"
    );
    let mut docs: BTreeMap<&str, String> = BTreeMap::new();
    let mut problems = vec![];
    for claim in claims {
        let Claim::Text { doc, template } = claim else {
            continue;
        };
        let text = docs.entry(doc).or_insert_with(|| {
            let text =
                std::fs::read_to_string(root().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
            collapse(&text)
        });
        match figures.fill(template) {
            Ok(line) if text.contains(&collapse(&line)) => {}
            Ok(line) => problems.push(format!(
                "{doc} should contain:\n    {line}\n  (template: {template})"
            )),
            Err(e) => problems.push(format!("{doc}: a bad claim: {e}\n  (template: {template})")),
        }
    }
    problems
}

/// Runs of whitespace, line breaks included, as one space.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The committed studies: directories with a `run.json` or `run.json.gz`, and other files
/// named `*run.json` or `*run.json.gz`, as paths under `dir`.
fn committed_studies(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let study = if name == "run.json" || name == "run.json.gz" {
                next.clone()
            } else if name.ends_with("run.json") || name.ends_with("run.json.gz") {
                path
            } else {
                continue;
            };
            let relative = study
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(relative);
        }
    }
    out
}

#[test]
fn every_committed_study_has_claims() {
    let committed = committed_studies(&root().join(STUDIES_DIR));
    let listed: BTreeSet<String> = STUDIES.iter().map(|s| s.to_string()).collect();
    let unchecked: Vec<&String> = committed.difference(&listed).collect();
    let gone: Vec<&String> = listed.difference(&committed).collect();
    assert!(
        unchecked.is_empty() && gone.is_empty(),
        "every study under {STUDIES_DIR}/ needs its figures in the documentation, checked \
         by a test in tests/it/readme_figures/mod.rs (`studies!`) with claims in claims.rs.\n\
         committed without claims: {unchecked:?}\nlisted but not committed: {gone:?}"
    );
}
