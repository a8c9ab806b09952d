//! The MIG suite on the local GPU: the shipped `mig-probes` study (each probe tenant on
//! its own 2g.35gb instance against each alone, 3 repetitions, about 2.5 minutes on an
//! H200) with its comparison table.
//!
//! `cargo bench --bench mig`. MIG is read through NVML: when it is off, or the instances
//! the scenario needs do not exist, it prints one line saying so and how to set them up
//! (`gpu-configs/setup_mig.sh`) and exits 0, as it does without a GPU. gpushare never
//! changes the MIG layout itself. It exits 1 if a run was INVALID. The study is written
//! to `results/bench-mig-<timestamp>/` (`GPUSHARE_RESULTS_DIR` replaces `results/`).

mod suite;

use std::process::ExitCode;

const SUITE: suite::Suite = suite::Suite {
    name: "mig",
    scenario: "mig-probes",
    model_scenarios: &[],
    modes: &["mig"],
    setup_hint: Some(
        "mig-probes needs three 2g.35gb instances: `gpu-configs/setup_mig.sh --layout all-2g` as root",
    ),
    about_minutes: 2.5,
};

fn main() -> ExitCode {
    SUITE.main(|_| Ok(()))
}
