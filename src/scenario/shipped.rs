//! The shipped scenarios, compiled into the binary so `gpushare run <name>` and the
//! default scenario work from any directory. The files in `scenarios/` are the source.

/// Name (file stem) and text of each shipped scenario.
pub const SHIPPED: &[(&str, &str)] = &[
    ("smoke-cpu", include_str!("../../scenarios/smoke-cpu.toml")),
    (
        "probes-mix",
        include_str!("../../scenarios/probes-mix.toml"),
    ),
    (
        "mig-probes",
        include_str!("../../scenarios/mig-probes.toml"),
    ),
    (
        "resnet50-train-x2",
        include_str!("../../scenarios/resnet50-train-x2.toml"),
    ),
    (
        "resnet50-train-bert-infer",
        include_str!("../../scenarios/resnet50-train-bert-infer.toml"),
    ),
    (
        "gpt2-train-vit-infer",
        include_str!("../../scenarios/gpt2-train-vit-infer.toml"),
    ),
    (
        "notebook-vs-training",
        include_str!("../../scenarios/notebook-vs-training.toml"),
    ),
    (
        "resnet50-train-bert-serve",
        include_str!("../../scenarios/resnet50-train-bert-serve.toml"),
    ),
    (
        "occupancy-mps",
        include_str!("../../scenarios/occupancy-mps.toml"),
    ),
    (
        "latency-interval-sweep",
        include_str!("../../scenarios/latency-interval-sweep.toml"),
    ),
    (
        "scaling-resnet50-infer",
        include_str!("../../scenarios/scaling-resnet50-infer.toml"),
    ),
    (
        "scaling-serve",
        include_str!("../../scenarios/scaling-serve.toml"),
    ),
];

/// The text of a shipped scenario by name, with or without `.toml`.
pub fn find(name: &str) -> Option<&'static str> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    SHIPPED
        .iter()
        .find(|(n, _)| *n == stem)
        .map(|(_, text)| *text)
}
