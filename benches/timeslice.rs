//! The time-slicing suite on the local GPU: the shipped `probes-mix` study narrowed to
//! exclusive and time-slicing (3 repetitions, about 2 minutes on an H200) with its
//! comparison table, then the `launch-latency` criterion group for one warp alone and
//! next to a compute-bound co-tenant under time-slicing. Built with `--features torch`
//! it then runs the shipped model mixes narrowed to exclusive and time-slicing.
//!
//! `cargo bench --bench timeslice`. Without a GPU or the `cuda` feature it prints one
//! line saying why and exits 0; it exits 1 if a run was INVALID or a case failed. The
//! study is written to `results/bench-timeslice-<timestamp>/` (`GPUSHARE_RESULTS_DIR`
//! replaces `results/`); see `benches/suite/mod.rs`.

mod suite;

use std::process::ExitCode;

const SUITE: suite::Suite = suite::Suite {
    name: "timeslice",
    scenario: "probes-mix",
    model_scenarios: suite::MODEL_MIXES,
    modes: &["time-slicing"],
    setup_hint: None,
    about_minutes: 2.5,
};

fn main() -> ExitCode {
    suite::main_with_launch_latency(&SUITE)
}
