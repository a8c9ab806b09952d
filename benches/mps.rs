//! The MPS suite on the local GPU: the shipped `probes-mix` study (exclusive, time-slicing,
//! MPS without a limit and MPS at 50% of the SMs, 3 repetitions of 6 s windows, about 2.5
//! minutes on an H200) with its comparison table, then the `launch-latency` criterion
//! group: one warp's launch-to-completion time alone, under MPS alone, and next to a
//! compute-bound co-tenant under time-slicing and each MPS setting (about a minute
//! more). Built with `--features torch` it then runs the shipped model mixes
//! (`resnet50-train-x2`, `resnet50-train-bert-infer`, `gpt2-train-vit-infer`, all their
//! modes, 2 repetitions of 5 s windows: about 6 minutes more, estimated from the
//! committed H200 studies' run times). The shortened windows are the standard matrix
//! (`suite::STANDARD_*`, which says why each CI allows it); `GPUSHARE_BENCH_FULL=1` runs
//! the scenarios' own.
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
    about_minutes: 3.5,
};

fn main() -> ExitCode {
    suite::main_with_launch_latency(&SUITE)
}
