//! The MPS suite on the local GPU: the shipped `probes-mix` study (exclusive, time-slicing,
//! MPS without a limit and MPS at 50% of the SMs, 3 repetitions, about 3.5 minutes on an
//! H200) with its comparison table, then the `launch-latency` criterion group: one warp's
//! launch-to-completion time alone, under MPS alone, and next to a compute-bound
//! co-tenant under time-slicing and each MPS setting (about a minute more). Built with
//! `--features torch` it then runs the shipped model mixes (`resnet50-train-x2`,
//! `resnet50-train-bert-infer`, `gpt2-train-vit-infer`, all their modes; roughly 20
//! minutes more, an estimate: they were measured with 5 s windows, not their default ones).
//!
//! `cargo bench --bench mps`. Without a GPU, MPS binaries or the `cuda` feature it prints
//! one line saying why and exits 0; it exits 1 if a run was INVALID or a case failed.
//! The study is written to `results/bench-mps-<timestamp>/` (`GPUSHARE_RESULTS_DIR`
//! replaces `results/`); see `benches/suite/mod.rs`.

mod suite;

use std::process::ExitCode;

const SUITE: suite::Suite = suite::Suite {
    name: "mps",
    scenario: "probes-mix",
    model_scenarios: suite::MODEL_MIXES,
    modes: &["time-slicing", "mps"],
    setup_hint: None,
    about_minutes: 4.5,
};

fn main() -> ExitCode {
    suite::main_with_launch_latency(&SUITE)
}
