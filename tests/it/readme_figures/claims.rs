//! What the documentation says about each committed H200 study, as templates of the
//! figures `gpushare report` prints from it (syntax: `figures.rs`). One function per
//! study, in the order of `results/h200/README.md`; a figure quoted in two places has a
//! claim in each.

use super::{chart, claim, h200, per_mode, readme, Claim};

/// The probe studies' mode labels in `results/h200/README.md`'s probes-mix table.
const PROBE_MODES: &[(&str, &str)] = &[
    ("time-slicing", "time-slicing"),
    ("mps", "mps"),
    ("mps(atp=50)", "mps, 50% SMs each"),
];

/// The model mixes' mode labels in their tables.
const MODEL_MODES: &[(&str, &str)] = &[
    ("time-slicing", "time-slicing"),
    ("mps", "MPS"),
    ("mps(atp=50)", "MPS, 50% SMs each"),
];

/// `results/h200/2026-11-29-serve/README.md`, the serving runs' own notes.
fn serve_notes(template: impl Into<String>) -> Claim {
    claim("results/h200/2026-11-29-serve/README.md", template)
}

pub fn probes_mix() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-probes-mix` | {Rec:choose|label} (STP {S:mps(atp=50):STP|mean}) | {Rec:runner-up} | time-slicing and plain MPS met the latency probe's 1 ms P99 in {T:time-slicing,mps:latency:SLO met|all|of} repetitions |"),
        h200("`gpushare run probes-mix` ({P:repetitions} repetitions, {P:window s} s windows;"),
        h200("| exclusive (alone) | {T:exclusive:compute:NP|mean} ({T:exclusive:compute:throughput (items/s)|mean} GFLOP/s) | {T:exclusive:memory:NP|mean} ({T:exclusive:memory:throughput (items/s)|mean} GB/s) | {T:exclusive:latency:NP|mean} ({T:exclusive:latency:throughput (items/s)|mean}/s) | {T:exclusive:latency:P99 ms} ms | - | - | - | {S:exclusive:GPU util %|pct} | - |"),
        h200("about 45% of their speed (STP {S:time-slicing:STP|mean}, barely better"),
        h200("it completes only {T:time-slicing:latency:throughput (items/s)|mean} of its 1,000 launches per second"),
        h200("STP doubles ({S:mps:STP|mean}) and the latency probe keeps its schedule (P99 {T:mps:latency:P99 ms|.1} ms:"),
        h200("loses most of its bandwidth to the compute-bound one (NP {T:mps:memory:NP|.2})"),
        h200("protects the latency probe completely (P99 {T:mps(atp=50):latency:P99 ms} ms, as alone)"),
        h200("the highest STP of the four ({S:mps(atp=50):STP})"),
        h200("sharing did the same work with {S:time-slicing:energy gain|mean}x (time-slicing) to {S:mps:energy gain|mean}x (MPS) less GPU energy"),
        h200("throughput across the {P:repetitions} repetitions is at most {T:exclusive,time-slicing:*:throughput CV %|max|.2}% for every tenant alone and under time-slicing"),
        h200("memory CV {T:mps:memory:throughput CV %|int}% (mps) and {T:mps(atp=50):memory:throughput CV %|int}% (mps, 50% SMs), compute {T:mps:compute:throughput CV %|.1}% and {T:mps(atp=50):compute:throughput CV %|.1}%"),
        h200("(the same tenants alone repeat within {T:exclusive:*:throughput CV %|max|.2}%)"),
        readme("its compute and memory tenants varied by at most {T:exclusive,time-slicing:compute,memory:throughput CV %|max|.2}% across repetitions at 8 s alone and time-sliced"),
        chart("docs/images/probes-mix-np.svg", "np"),
    ];
    claims.extend(per_mode(
        h200,
        PROBE_MODES,
        "| $label | {T:$mode:compute:NP} | {T:$mode:memory:NP} | {T:$mode:latency:NP|mean} | {T:$mode:latency:P99 ms} ms | {S:$mode:STP} | {S:$mode:ANTT|mean} | {S:$mode:fairness|mean} | {S:$mode:GPU util %|pct} | {S:$mode:energy gain|mean} |",
    ));
    claims
}

pub fn bench_mps() -> Vec<Claim> {
    vec![
        h200("| `2026-11-29-bench-mps` (same scenario) | {Rec:choose|label} (STP {S:mps(atp=50):STP|mean}) | {Rec:runner-up} | as above |"),
        h200("the bench's run the same day (below) gave {R:mps(atp=50):STP|range}, level with plain MPS ({R:mps:STP|range})"),
        h200("; {P:repetitions} repetitions of {P:window s} s windows) printed {P:runs VALID} runs VALID and exited 0: STP {R:time-slicing:STP|all} under time-slicing in every repetition, {R:mps:STP|range} under MPS and {R:mps(atp=50):STP|range} under MPS at 50% SMs"),
    ]
}

pub fn probes_sharing() -> Vec<Claim> {
    vec![h200(
        "| `2026-11-29-gpu-check/probes-sharing` | {Rec:choose|label} (STP {S:mps(atp=50):STP|mean}) | {Rec:runner-up} | time-slicing had {S:time-slicing:VALID runs} runs VALID (too few latency samples for a P99); MPS met the latency SLO in {T:mps:latency:SLO met|of} repetitions |",
    )]
}

pub fn resnet50_train_x2() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-resnet50-train-x2` | {Rec:choose|label} (STP {S:mps:STP|mean}) | {Rec:runner-up|label} ({S:mps(atp=50):STP|mean}) | time-slicing {S:time-slicing:STP|mean|.2} |"),
        h200("Two ResNet-50 fp32 trainings (`resnet50-train-x2`, {P:repetitions} repetitions, {P:window s} s windows,"),
        h200("| exclusive (alone) | 1.00 ({B:resnet:alone (items/s)|mean} images/s) | - | {S:exclusive:GPU util %}% | {S:exclusive:power W} W | - |"),
        h200("is met ({S:time-slicing:GPU util %}% NVML utilization)"),
        h200("(STP {S:time-slicing:STP|mean|.2}, context switches)"),
        readme("the trainers varied by {B:resnet:CV} (two ResNet-50s)"),
    ];
    claims.extend(per_mode(
        h200,
        MODEL_MODES,
        "| $label | {T:$mode:resnet#0,resnet#1:NP|mean|all} | {S:$mode:STP} | {S:$mode:GPU util %}% | {S:$mode:power W} W | {S:$mode:energy gain|mean} |",
    ));
    claims
}

pub fn resnet50_train_bert_infer() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-resnet50-train-bert-infer` | {Rec:choose|label} (STP {S:mps:STP|mean}) | {Rec:runner-up|label} ({S:mps(atp=50):STP|mean}) | time-slicing {S:time-slicing:STP|mean|.2} |"),
        h200("(`resnet50-train-bert-infer`, bf16 inference of 32 x 128 tokens, {P:repetitions} repetitions, {P:window s} s windows)"),
        h200("| exclusive (alone) | 1.00 ({T:exclusive:train:throughput (items/s)|mean} images/s) | 1.00 ({T:exclusive:infer:throughput (items/s)|mean} sequences/s) | - | - | {S:exclusive:GPU util %|pct} |"),
        h200("the inference tenant keeps under half its speed time-sliced and under plain MPS (NP at most {T:time-slicing,mps:infer:NP|mean|max})"),
        h200("BERT inference alone varied more between repetitions ({R:exclusive:infer items/s|range} sequences/s, CV {B:infer:CV})"),
        h200("(the report flags it {B:infer:flag}: it kept the GPU busy {B:infer:GPU util % alone}% of the time alone)"),
        readme("{B:train:CV} (next to BERT)"),
    ];
    claims.extend(per_mode(
        h200,
        MODEL_MODES,
        "| $label | {T:$mode:train:NP|mean} | {T:$mode:infer:NP|mean} | {S:$mode:STP} | {S:$mode:fairness|mean} | {S:$mode:GPU util %}% |",
    ));
    claims
}

pub fn gpt2_train_vit_infer() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-gpt2-train-vit-infer` | {Rec:choose|label} (STP {S:mps:STP|mean}) | {Rec:runner-up|label} ({S:mps(atp=50):STP|mean}) | time-slicing {S:time-slicing:STP|mean|.2} |"),
        h200("(`gpt2-train-vit-infer`, {P:repetitions} repetitions, {P:window s} s windows; raw results in"),
        h200("| exclusive (alone) | 1.00 ({T:exclusive:train:throughput (items/s)|mean} sequences/s) | 1.00 ({T:exclusive:infer:throughput (items/s)|mean} images/s) | - | - | {S:exclusive:GPU util %}% |"),
        h200("Two transformers that each keep the GPU busy alone ({B:train:GPU util % alone}% and {B:infer:GPU util % alone}%)"),
        readme("and {B:train:CV} (GPT-2)"),
    ];
    claims.extend(per_mode(
        h200,
        MODEL_MODES,
        "| $label | {T:$mode:train:NP|mean} | {T:$mode:infer:NP|mean} | {S:$mode:STP} | {S:$mode:fairness|mean} | {S:$mode:GPU util %}% |",
    ));
    claims
}

pub fn resnet50_train_bert_serve() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-resnet50-train-bert-serve` | {Rec:choose|label} (STP {S:mps:STP|mean}; closed-loop {S:mps:STP closed-loop|mean|.2}) | {Rec:runner-up|label} ({S:time-slicing:STP|mean}) | MPS at 50% SMs {S:mps(atp=50):STP|mean} |"),
        h200("(`resnet50-train-bert-serve`, {P:repetitions} repetitions, {P:window s} s windows)"),
        h200("| exclusive (alone) | {T:exclusive:bert-serve:P50 ms} / {T:exclusive:bert-serve:P99 ms} ms | {T:exclusive:bert-serve:SLO attained|pct}, {T:exclusive:bert-serve:SLO met} met | {T:exclusive:resnet-train:NP|mean} ({T:exclusive:resnet-train:throughput (items/s)|mean} images/s) | - | {S:exclusive:GPU util %}% |"),
        h200("and the trainer at {T:mps:resnet-train:NP|percent}"),
    ];
    claims.extend(per_mode(
        h200,
        MODEL_MODES,
        "| $label | {T:$mode:bert-serve:P50 ms} / {T:$mode:bert-serve:P99 ms} ms | {T:$mode:bert-serve:SLO attained|pct}, {T:$mode:bert-serve:SLO met} met | {T:$mode:resnet-train:NP|mean} | {S:$mode:STP} | {S:$mode:GPU util %}% |",
    ));
    claims
}

pub fn notebook_vs_training() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-11-29-notebook-vs-training` | {Rec:choose|label} (STP {S:mps:STP|mean}; a tie with {Rec:runner-up|label}, {S:mps(atp=50):STP|mean}, within the CIs) | {Rec:runner-up|label} | time-slicing {S:time-slicing:STP|mean} |"),
        h200("(`notebook-vs-training`, {P:repetitions} repetitions, {P:window s} s windows)"),
        h200("| exclusive (alone) | {T:exclusive:notebook:P50 ms} ms | {T:exclusive:notebook:SLO attained|pct}, {T:exclusive:notebook:SLO met} met | {T:exclusive:training:NP|mean} ({T:exclusive:training:throughput (items/s)|mean} images/s) | - | {S:exclusive:GPU util %}% |"),
        h200("The notebook completed {R:*:notebook steps|range} cells per run"),
        h200("the trainer keeps only {T:mps:training:NP|percent} of its speed"),
    ];
    claims.extend(per_mode(
        h200,
        MODEL_MODES,
        "| $label | {T:$mode:notebook:P50 ms} ms | {T:$mode:notebook:SLO attained|pct}, {T:$mode:notebook:SLO met} met | {T:$mode:training:NP|mean} | {S:$mode:STP} | {S:$mode:GPU util %}% |",
    ));
    claims
}

pub fn torch_overhead() -> Vec<Claim> {
    vec![
        h200("| `2026-11-29-torch/overhead` | {Rec:choose|label} (one tenant) | - | - |"),
        h200("as a gpushare tenant (`gpushare run`, {P:repetitions} x {P:window s} s windows) against the bare training loop (3 x 300 steps): {T:exclusive:resnet:throughput (items/s)} against"),
    ]
}

pub fn serve_resnet50_twin_run1() -> Vec<Claim> {
    vec![
        serve_notes("re-render with `gpushare report <directory>/infer-batch-run.json.gz`"),
        h200("and reached {T:exclusive:batch:throughput (items/s)} in another call"),
        h200("against the fastest twin seen on 2026-11-29 ({T:exclusive:batch:throughput (items/s)})"),
        serve_notes("The `infer.batch.resnet50` twin ran at {T:exclusive:batch:throughput (items/s)|mean} images/s in run 1 (GPU utilization {S:exclusive:GPU util %|pct}, windowed CV {R:exclusive:batch windowed CV|.2})"),
    ]
}

pub fn serve_bert_twin() -> Vec<Claim> {
    vec![h200(
        "| BERT-base, 128 tokens | 9153 requests/s | {T:exclusive:batch:throughput (items/s)} |",
    )]
}

pub fn serve_resnet50_twin_run2() -> Vec<Claim> {
    vec![
        h200("against twins at {T:exclusive:batch:throughput (items/s)|mean} and"),
        serve_notes("but at {T:exclusive:batch:throughput (items/s)|mean} and"),
        serve_notes("(utilization {S:exclusive:GPU util %|pct} and"),
        serve_notes("windowed CV {R:exclusive:batch windowed CV|.2} and"),
    ]
}

pub fn serve_resnet50_twin_run3() -> Vec<Claim> {
    vec![
        h200("| ResNet-50, 224 x 224 f32 | 2389 requests/s | {T:exclusive:batch:throughput (items/s)} |"),
        h200("For ResNet-50 that twin itself ran at {S:exclusive:GPU util %|pct} GPU utilization there"),
        h200("and {T:exclusive:batch:throughput (items/s)|mean} images/s)"),
        serve_notes("and {T:exclusive:batch:throughput (items/s)|mean} in runs 2 and 3"),
        serve_notes("and {S:exclusive:GPU util %|pct}, windowed CV"),
        serve_notes("and {R:exclusive:batch windowed CV|.2})"),
    ]
}

pub fn bench_suite_probes() -> Vec<Claim> {
    vec![
        h200("| `2026-12-02-bench-mps/bench-mps-20261202-024311` (probes mix) | {Rec:choose|label} (STP {S:mps(atp=50):STP|mean}) | {Rec:runner-up} | time-slicing and plain MPS met the latency probe's 1 ms P99 in {T:time-slicing,mps:latency:SLO met|all|of} repetitions |"),
        h200("The probes mix that call ({P:repetitions} x {P:window s} s, {P:runs VALID} runs VALID): STP {R:time-slicing:STP|all} time-slicing, {R:mps:STP|all} MPS and {R:mps(atp=50):STP|all} MPS at 50% SMs in every repetition"),
        readme("6 s still gave the time-sliced latency probe {R:time-slicing:latency steps|range} launches per run"),
    ]
}

pub fn bench_suite_resnet50_train_x2() -> Vec<Claim> {
    vec![
        h200("| `2026-12-02-bench-mps/...-resnet50-train-x2-...` | {Rec:choose|label} (STP {S:mps:STP|mean}) | {Rec:runner-up|label} ({S:mps(atp=50):STP|mean}) | time-slicing {S:time-slicing:STP|mean|.2} |"),
        h200("then the three model mixes at {P:repetitions} x {P:window s} s;"),
        h200("Model mixes that call (STP time-slicing / MPS / MPS 50%, [95% CI]): ResNet-50 training x2 {S:time-slicing:STP} / {S:mps:STP} / {S:mps(atp=50):STP};"),
        h200("chose as before for the two-trainer mix ({Rec:choose|label})"),
    ]
}

pub fn bench_suite_resnet50_train_bert_infer() -> Vec<Claim> {
    vec![
        h200("ResNet-50 training + BERT inference {S:time-slicing:STP} / {S:mps:STP} / {S:mps(atp=50):STP} (the BERT baseline flagged {B:infer:flag}: CV {B:infer:CV}, GPU {B:infer:GPU util % alone}% busy alone)"),
        h200("| `2026-12-02-bench-mps/...-resnet50-train-bert-infer-...` | {Rec:choose|label} (STP {S:mps:STP|mean}; a tie with {Rec:runner-up|label}, {S:mps(atp=50):STP|mean}, within the CIs) | {Rec:runner-up|label} | time-slicing {S:time-slicing:STP|mean} |"),
        h200("the bench's shorter rerun of 2026-12-02 ({P:repetitions} repetitions of {P:window s} s)"),
        h200("training + BERT inference it chose {Rec:choose|label} ({Rec:runner-up|label} {S:mps(atp=50):STP|mean} against {Rec:choose|label} {S:mps:STP|mean}, a tie"),
    ]
}

pub fn bench_suite_gpt2_train_vit_infer() -> Vec<Claim> {
    vec![
        h200("GPT-2 training + ViT inference {S:time-slicing:STP} / {S:mps:STP} / {S:mps(atp=50):STP}."),
        h200("and the GPT-2 mix ({Rec:choose|label})"),
        h200("| `2026-12-02-bench-mps/...-gpt2-train-vit-infer-...` | {Rec:choose|label} (STP {S:mps:STP|mean}) | {Rec:runner-up|label} ({S:mps(atp=50):STP|mean}) | time-slicing {S:time-slicing:STP|mean} |"),
    ]
}

pub fn occupancy() -> Vec<Claim> {
    vec![
        h200("scenario `occupancy-mps`, {P:repetitions} repetition x {P:window s} s)"),
        h200("the one-warp latency probe's P50 / worst P99 was {A@c0:mps:latency P50 / worst P99 ms} ms with `occupancy = \"kernel\"` and {A@c1:mps:latency P50 / worst P99 ms} ms with `occupancy = \"full\"` under MPS; {A@c0:time-slicing:latency P50 / worst P99 ms} and {A@c1:time-slicing:latency P50 / worst P99 ms} ms under time-slicing"),
        h200("| `2026-12-02-measure/occupancy` (per configuration) | {Rec@c0,c1:choose|all|label} (STP {S@c0,c1:mps:STP|all}) for both shapes | {Rec@c0,c1:runner-up|all} ({S@c0,c1:time-slicing:STP|all}) | - |"),
        readme("and next to it a one-warp launch waited {T@c0:mps:latency:P50 ms|.2} ms (P50) under MPS"),
    ]
}

pub fn occupancy_hold() -> Vec<Claim> {
    vec![
        h200("| `2026-12-02-occupancy-hold` (per configuration) | {Rec@c0,c1:choose|all|label} (STP {S@c0,c1:mps:STP|all}) for `full` and `hold` | {Rec@c0,c1:runner-up|all} ({S@c0:time-slicing:STP}, {S@c1:time-slicing:STP}) | - |"),
        h200("{B@c1:compute:alone (items/s)|mean|/1000|.1} of `full`'s {B@c0:compute:alone (items/s)|mean|/1000|.1} TFLOP/s alone"),
        h200("x {P:window s} s (`scripts/gpu-check.sh measure occupancy`; raw: `2026-12-02-occupancy-hold/`), the latency probe's P50 / P99 under MPS: {A@c0:mps:latency P50 / worst P99 ms} ms next to `full`, {A@c1:mps:latency P50 / worst P99 ms} ms next to `hold`; under time-slicing {A@c0:time-slicing:latency P50 / worst P99 ms} and {A@c1:time-slicing:latency P50 / worst P99 ms} ms"),
        readme("gpushare's `hold` shape (waiting in 2 us slices between FMA rounds) measured {T@c1:mps:latency:P50 ms|.2} ms P50 and {T@c1:mps:latency:P99 ms|.1} ms P99 under MPS"),
    ]
}

pub fn interval() -> Vec<Claim> {
    vec![
        h200("| `2026-12-02-measure/interval` (per interval) | {Rec@c0,c1:choose|all} at 1 and 2 ms; {Rec@c2,c3:choose|all} at 5 ms (STP {S@c2:time-slicing:STP}) and 10 ms ({S@c3:time-slicing:STP}) | {Rec@c2,c3:runner-up|all} | at 1-2 ms the latency probe met its 5 ms P99 under time-slicing in {T@c0,c1:time-slicing:latency:SLO met|all|of} repetitions (it falls behind) |"),
        h200("(scenario `latency-interval-sweep`, time-slicing next to `probe.compute`, {P:repetitions} repetition x {P:window s} s)"),
        h200("| 1 ms | {A@c0:time-slicing:latency P50 / worst P99 ms} (falls behind its schedule) | {A@c0:time-slicing:STP} |"),
        h200("| 2 ms | {A@c1:time-slicing:latency P50 / worst P99 ms} (falls behind) | {A@c1:time-slicing:STP} |"),
        h200("| 5 ms | {A@c2:time-slicing:latency P50 / worst P99 ms} | {A@c2:time-slicing:STP} |"),
        h200("| 10 ms | {A@c3:time-slicing:latency P50 / worst P99 ms} | {A@c3:time-slicing:STP} |"),
        readme("P50 / P99 of {A@c0:time-slicing:latency P50 / worst P99 ms} ms at 1 ms and {A@c1:time-slicing:latency P50 / worst P99 ms} ms at 2 ms (behind schedule), {A@c2:time-slicing:latency P50 / worst P99 ms} ms at 5 ms and {A@c3:time-slicing:latency P50 / worst P99 ms} ms at 10 ms."),
    ]
}

/// A table row's template for each point of a 1-16 replica sweep (c0 to c4): `$c` is the
/// configuration.
fn per_sweep_point(template: &str) -> [Claim; 5] {
    ["c0", "c1", "c2", "c3", "c4"].map(|c| h200(template.replace("$c", c)))
}

pub fn scaling() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-12-02-measure/scaling` (per replica count) | {Rec@c0:choose} for 1 replica; {Rec@c1,c2,c3,c4:choose|all|label} for 2, 4, 8, 16 (STP {S@c1:mps:STP}, {S@c2:mps:STP}, {S@c3:mps:STP}, {S@c4:mps:STP}) | {Rec@c0:runner-up|label} for 1 replica, {Rec@c1,c2,c3:runner-up|all} for 2-8, {Rec@c4:runner-up} at 16 | time-slicing lower at every count |"),
        h200("(scenario `scaling-resnet50-infer`, `infer.batch.resnet50` bf16 batch 32, {P:repetitions} repetition x {P:window s} s per point)"),
        h200("The baselines of 4 and 8 replicas were flagged {B@c2,c3:infer:flag|all} (GPU busy {B@c2:infer:GPU util % alone|pct} and {B@c3:infer:GPU util % alone|pct} alone)"),
        h200("a single replica shared with nothing reads NP {T@c0:time-slicing:infer:NP|.2}-{T@c0:mps:infer:NP|.2}"),
    ];
    claims.extend(per_sweep_point(
        "| {A@$c:mps:tenants} | {A@$c:time-slicing:STP} | {A@$c:mps:STP} | {A@$c:time-slicing:NP per tenant (min-max)|mean} / {A@$c:mps:NP per tenant (min-max)|mean} | {A@$c:mps:GPU memory GiB} |",
    ));
    claims
}

// Raw logs: figures the GPU tests and benches printed, not studies.

pub fn probe_quality_log() -> Vec<Claim> {
    vec![h200(
        "`probe.compute` reaches {F:compute:value|.1} TFLOP/s, {F:compute_vs_peak:value} of the FP32 FMA peak computed from 132 SMs x 128 lanes x 2 x 1980 MHz ({F:fp32_peak:value|.1} TFLOP/s; goal 0.8); `probe.memory` reaches {F:memory:value|int} GB/s, {F:memory_vs_d2d_copy:value} of a device-to-device copy measured in the same process ({F:d2d_copy:value|int} GB/s; goal 0.9); `probe.latency` alone: P50 {F:latency_p50_alone:value|int} µs, P99 {F:latency_p99_alone:value|int} µs",
    )]
}

pub fn launch_latency_log() -> Vec<Claim> {
    [
        ("exclusive/alone", "alone"),
        (
            "time-slicing/probe.compute",
            "time-slicing, next to `probe.compute`",
        ),
        ("mps/alone", "MPS, alone"),
        ("mps/probe.compute", "MPS, next to `probe.compute`"),
        (
            "mps(atp=50)/probe.compute",
            "MPS at 50% SMs each, next to `probe.compute`",
        ),
    ]
    .iter()
    .map(|(case, label)| {
        // Three significant digits, as the table states them.
        let digits = |column: &str| format!("{{L:{case}:{column}|.1}}");
        let template = if case.starts_with("time-slicing") {
            format!("| {label} | {{L:{case}:P50 us|int}} µs | {{L:{case}:P99 us|int}} µs |")
        } else if *case == "mps/probe.compute" {
            format!(
                "| {label} | {} µs | {{L:{case}:P99 us|int}} µs |",
                digits("P50 us")
            )
        } else {
            format!(
                "| {label} | {} µs | {} µs |",
                digits("P50 us"),
                digits("P99 us")
            )
        };
        h200(template)
    })
    .collect()
}

pub fn monitor_bench_log() -> Vec<Claim> {
    vec![h200(
        "uses {F:monitor_cpu_nvml_idle:value|.2}% of one core with the GPU idle and {F:monitor_cpu_nvml_busy:value|.2}% while `probe.compute` runs, after its first reading (which pays NVML's set-up: {F:monitor_cpu_nvml_idle_with_first_reading:value|.2}% and {F:monitor_cpu_nvml_busy_with_first_reading:value|.2}% with it)",
    )]
}

pub fn monitor_every_tick_log() -> Vec<Claim> {
    vec![h200(
        "reading the energy counter on every sample had cost {F:monitor_cpu_nvml_idle:value|.1}%",
    )]
}

pub fn sharing_tests_log() -> Vec<Claim> {
    vec![h200(
        "the janitor had the daemon and server gone {F:mps_gone_after_runner_killed_s:value} s after the kill",
    )]
}

// The load generator's reports of the 2026-11-29 serving runs (`bench/serve/h200.sh`).

pub fn serve_bert_saturation() -> Vec<Claim> {
    vec![h200(
        "| BERT-base, 128 tokens | {J:/throughput_ok_per_s|int} requests/s |",
    )]
}

pub fn serve_bert_p99_batched() -> Vec<Claim> {
    vec![h200(
        "| **0.952** | {J:/latency_ms/p50_ms|sig3} / {J:/latency_ms/p99_ms|sig3} ms at {J:/target_rate_req_per_s|int}/s, SLO {J:/slo/target_p99_ms|int} ms {J:/slo/p99_met|met} |",
    )]
}

pub fn serve_bert_p99_unbatched() -> Vec<Claim> {
    vec![h200(
        "| holds {J:/throughput_ok_per_s|int}/s: P99 {J:/latency_ms/p99_ms|/1000|.1} s, {J:/n_dropped|thousands} requests dropped |",
    )]
}

pub fn serve_resnet50_saturation_before_staging() -> Vec<Claim> {
    vec![h200("memory took it from {J:/throughput_ok_per_s|int} to")]
}

pub fn serve_resnet50_saturation() -> Vec<Claim> {
    vec![
        h200("| ResNet-50, 224 x 224 f32 | {J:/throughput_ok_per_s|int} requests/s |"),
        h200("to {J:/throughput_ok_per_s|int} requests/s (0.370 to 0.453"),
        h200("(it was {J:/throughput_ok_per_s|int} on 2026-11-29 with f32 bodies)"),
    ]
}

pub fn serve_resnet50_p99_batched() -> Vec<Claim> {
    vec![h200(
        "| **0.453** | {J:/latency_ms/p50_ms|sig3} / {J:/latency_ms/p99_ms|sig3} ms at {J:/target_rate_req_per_s|int}/s, SLO {J:/slo/target_p99_ms|int} ms {J:/slo/p99_met|met} |",
    )]
}

pub fn serve_resnet50_p99_unbatched() -> Vec<Claim> {
    vec![h200(
        "| holds {J:/throughput_ok_per_s|int}/s: P99 {J:/latency_ms/p99_ms|/1000|.1} s, {J:/n_dropped|thousands} dropped |",
    )]
}

/// `bench/serve/side-by-side.sh` of 2026-12-02: each line one measurement, keyed by
/// repetition, model, what (`infer-batch`, `saturation`, `p99`) and body.
pub fn serve_side_by_side() -> Vec<Claim> {
    const INFER: &str = "/report/analysis/groups/0/tenants/0/throughput_items_per_s/mean";
    const INFER_UTIL: &str = "/report/analysis/groups/0/util_gpu_pct/mean";
    const SERVED: &str = "/report/throughput_ok_per_s";
    let mut claims: Vec<Claim> = ["1", "2", "3"]
        .iter()
        .map(|rep| {
            h200(format!(
                "| {rep} | {{JL:{rep}:resnet50:infer-batch:none:{INFER}|int}} ({{JL:{rep}:resnet50:infer-batch:none:{INFER_UTIL}|pct}}) | {{JL:{rep}:resnet50:saturation:f32:{SERVED}|int}} | {{JL:{rep}:resnet50:saturation:u8:{SERVED}|int}} |"
            ))
        })
        .collect();
    claims.extend([
        h200(format!("the server now saturates at {{JL:*:resnet50:saturation:*:{SERVED}|int|range}} requests/s")),
        h200(format!("(GPU {{JL:*:resnet50:infer-batch:none:{INFER_UTIL}|int|range}}% busy, {{JL:*:resnet50:infer-batch:none:{INFER}|int|range}} images/s)")),
        h200("P99 at half the f32 saturation rate ({JL:1:resnet50:p99:f32:/rate|int} requests/s): {JL:1:resnet50:p99:f32:/report/latency_ms/p99_ms|sig3} ms, {JL:1:resnet50:p99:f32:/report/n_errors} errors."),
        h200(format!("BERT-base, same call: serve {{JL:1:bert-base:saturation:i64:{SERVED}|int}} / {{JL:2:bert-base:saturation:i64:{SERVED}|int}} / {{JL:3:bert-base:saturation:i64:{SERVED}|int}} requests/s against infer.batch {{JL:1:bert-base:infer-batch:none:{INFER}|int}} / {{JL:2:bert-base:infer-batch:none:{INFER}|int}} / {{JL:3:bert-base:infer-batch:none:{INFER}|int}} sequences/s")),
        h200(format!("that twin too was {{JL:*:bert-base:infer-batch:none:{INFER_UTIL}|int|range}}% busy")),
    ]);
    claims
}

/// The second side-by-side call of 2026-12-02 (`REPS=3 RESNET_BODIES=u8`).
pub fn serve_side_by_side_2() -> Vec<Claim> {
    const INFER: &str = "/report/analysis/groups/0/tenants/0/throughput_items_per_s/mean";
    const INFER_UTIL: &str = "/report/analysis/groups/0/util_gpu_pct/mean";
    const SERVED: &str = "/report/throughput_ok_per_s";
    let mut claims: Vec<Claim> = ["1", "2", "3"]
        .iter()
        .map(|rep| {
            h200(format!(
                "| {rep} | {{JL:{rep}:resnet50:infer-batch:none:{INFER}|int}} ({{JL:{rep}:resnet50:infer-batch:none:{INFER_UTIL}|pct}}) | {{JL:{rep}:resnet50:saturation:u8:{SERVED}|int}} |"
            ))
        })
        .collect();
    claims.extend(["1", "2", "3"].iter().map(|rep| {
        h200(format!(
            "| {{JL:{rep}:bert-base:infer-batch:none:{INFER}|int}} ({{JL:{rep}:bert-base:infer-batch:none:{INFER_UTIL}|pct}}) | {{JL:{rep}:bert-base:saturation:i64:{SERVED}|int}} |"
        ))
    }));
    claims.extend([
        h200(format!("this time against a twin that kept the GPU {{JL:*:resnet50:infer-batch:none:{INFER_UTIL}|int|range}}% busy")),
        h200(format!("but against a twin only {{JL:*:bert-base:infer-batch:none:{INFER_UTIL}|int|range}}% busy")),
        h200(format!("infer.batch's {{JL:1:resnet50:infer-batch:none:{INFER}|int}} images/s imply")),
    ]);
    claims
}

pub fn serve_scaling() -> Vec<Claim> {
    let mut claims = vec![
        h200("| `2026-12-02-serve-scaling` (per service count) | {Rec@c0:choose|label} for 1 service (every mode ties at STP {S@c0:time-slicing:STP}); {Rec@c1,c2,c3:choose|all|label} for 2, 4, 8 (STP {S@c1:time-slicing:STP}, {S@c2:time-slicing:STP}, {S@c3:time-slicing:STP}: ties with MPS, {S@c1:mps:STP}, {S@c2:mps:STP}, {S@c3:mps:STP}, from one repetition each); {Rec@c4:choose|label} for 16 (STP {S@c4:mps:STP}) | {Rec@c0:runner-up|label} for 1, {Rec@c1,c2,c3:runner-up|all|label} for 2-8, {Rec@c4:runner-up|label} at 16 | at 16 services time-slicing met the 50 ms P99 in {T@c4:time-slicing:*:SLO met|of|all} repetitions; at 8 it met it with less headroom than MPS (P50 / worst P99 {A@c3:time-slicing:latency P50 / worst P99 ms} against {A@c3:mps:latency P50 / worst P99 ms} ms) |"),
        h200("one service alone as the pooled baseline; {P:repetitions} repetition x {P:window s} s per point; {P:runs VALID} runs VALID"),
        h200("so each NP stays near 1 ({T:time-slicing,mps:*:NP|range})"),
        h200("One service alone: P50 / P99 {A@c0:exclusive:latency P50 / worst P99 ms} ms, the GPU {S@c0:exclusive:GPU util %}% busy."),
        h200("at most {T@c4:time-slicing:*:SLO attained|max} of a service's requests come back within 50 ms"),
        h200("MPS serves all 16 within the target (P50 under 9 ms, worst P99 {T@c4:mps:*:P99 ms|max} ms) with the GPU {S@c4:mps:GPU util %}% busy"),
        h200("NVML's utilization reads time-slicing's GPU as {S@c3,c4:time-slicing:GPU util %|int|range}% busy from 8 services on, against {S@c3,c4:mps:GPU util %|int|range}% under MPS"),
        h200("memory was {A@c4:mps:GPU memory GiB} of 141 GiB"),
        readme("(the H200 serve-scaling study at 8 services: time-slicing chosen, MPS tied with a tightest P99 of {T@c3:mps:*:P99 ms|max} ms against {T@c3:time-slicing:*:P99 ms|max}, of 50)"),
    ];
    claims.extend(per_sweep_point(
        "| {A@$c:mps:tenants} | {A@$c:time-slicing:latency P50 / worst P99 ms} | {A@$c:mps:latency P50 / worst P99 ms} | {T@$c:time-slicing:*:SLO attained|min} / {T@$c:mps:*:SLO attained|min} | {S@$c:time-slicing:GPU util %} / {S@$c:mps:GPU util %} | {A@$c:mps:GPU memory GiB} |",
    ));
    claims
}

/// The serving side-by-side runs' JSON pointers: infer.batch's throughput and GPU
/// utilization, and a load report's answered rate.
const SIDE_INFER: &str = "/report/analysis/groups/0/tenants/0/throughput_items_per_s/mean";
const SIDE_INFER_UTIL: &str = "/report/analysis/groups/0/util_gpu_pct/mean";
const SIDE_SERVED: &str = "/report/throughput_ok_per_s";

/// A side-by-side infer.batch run's throughput with its GPU utilization, as "6116 (82%)";
/// `variant` is `none` (eager) or `graph`.
fn side_infer(rep: &str, model: &str, variant: &str) -> String {
    format!("{{JL:{rep}:{model}:infer-batch:{variant}:{SIDE_INFER}|int}} ({{JL:{rep}:{model}:infer-batch:{variant}:{SIDE_INFER_UTIL}|pct}})")
}

/// A side-by-side saturation run's answered rate (`body` with `+` for `:`).
fn side_served(rep: &str, model: &str, body: &str) -> String {
    format!("{{JL:{rep}:{model}:saturation:{body}:{SIDE_SERVED}|int}}")
}

/// Call 1 of the third session: two batches in flight (`u8`, `i64`) against one
/// (`u8:serial`, `i64:serial`, read `u8+serial` in a key).
pub fn serve_side_by_side_3() -> Vec<Claim> {
    ["1", "2", "3"]
        .iter()
        .map(|rep| {
            let infer = |model: &str| side_infer(rep, model, "none");
            let served = |model: &str, body: &str| side_served(rep, model, body);
            h200(format!(
                "| {rep} | {} | {} | {} | {} | {} | {} |",
                infer("resnet50"),
                served("resnet50", "u8"),
                served("resnet50", "u8+serial"),
                infer("bert-base"),
                served("bert-base", "i64"),
                served("bert-base", "i64+serial"),
            ))
        })
        .collect()
}

/// Call 2 of the third session: the load generator on other CPUs than the server.
pub fn serve_side_by_side_4() -> Vec<Claim> {
    let mut claims: Vec<Claim> = ["1", "2", "3", "4"]
        .iter()
        .map(|rep| {
            h200(format!(
                "| {rep} | {{JL:{rep}:resnet50:infer-batch:none:{SIDE_INFER}|int}} ({{JL:{rep}:resnet50:infer-batch:none:{SIDE_INFER_UTIL}|pct}}) | {{JL:{rep}:resnet50:saturation:u8:{SIDE_SERVED}|int}} |"
            ))
        })
        .collect();
    claims.extend(["1", "2", "3", "4"].iter().map(|rep| {
        h200(format!(
            "| {{JL:{rep}:bert-base:infer-batch:none:{SIDE_INFER}|int}} ({{JL:{rep}:bert-base:infer-batch:none:{SIDE_INFER_UTIL}|pct}}) | {{JL:{rep}:bert-base:saturation:i64:{SIDE_SERVED}|int}} |"
        ))
    }));
    claims.extend([
        h200(format!("The served rate held within 10% ({{JL:*:resnet50:saturation:u8:{SIDE_SERVED}|int|range}}) while the twin alone moved from {{JL:*:resnet50:infer-batch:none:{SIDE_INFER}|int|min}} to {{JL:*:resnet50:infer-batch:none:{SIDE_INFER}|int|max}} images/s with its GPU {{JL:*:resnet50:infer-batch:none:{SIDE_INFER_UTIL}|int|range}}% busy")),
    ]);
    for (model, body, name) in [
        ("resnet50", "u8", "ResNet-50 u8"),
        ("bert-base", "i64", "BERT-base"),
    ] {
        let p99 = |pointer: &str, modifier: &str| {
            format!("{{JL:1:{model}:p99:{body}:{pointer}|{modifier}}}")
        };
        claims.push(h200(format!(
            "{name} at {{JL:1:{model}:p99:{body}:/rate}} requests/s, P50 {} ms, P99 {} ms, attainment {}",
            p99("/report/latency_ms/p50_ms", ".1"),
            p99("/report/latency_ms/p99_ms", ".1"),
            p99("/report/slo/attainment_fraction", ".3"),
        )));
    }
    claims
}

/// Call 4 of the third session: one load report per run, two batches in flight or one.
fn in_flight_run(run: &str, in_flight: &str) -> Vec<Claim> {
    vec![h200(format!(
        "| {run} | {in_flight} | {{J:/throughput_ok_per_s|int}} | {{J:/latency_ms/p50_ms|sig3}} | {{J:/latency_ms/p99_ms|sig3}} |"
    ))]
}

pub fn serve_in_flight_1() -> Vec<Claim> {
    in_flight_run("1", "2")
}

pub fn serve_in_flight_2() -> Vec<Claim> {
    in_flight_run("2", "1")
}

pub fn serve_in_flight_3() -> Vec<Claim> {
    in_flight_run("3", "1")
}

/// One model's half of the 2026-12-03 graphs table, for repetitions 1-3: infer.batch eager
/// and as a graph (with GPU utilization), then the eager and the graph server.
fn serve_graphs_rows(model: &str, body: &str) -> Vec<Claim> {
    ["1", "2", "3"]
        .iter()
        .map(|rep| {
            let infer = |variant: &str| side_infer(rep, model, variant);
            let served = |body: &str| side_served(rep, model, body);
            let row = format!(
                "| {} | {} | {} | {} |",
                infer("none"),
                infer("graph"),
                served(body),
                served(&format!("{body}+graphs")),
            );
            // ResNet-50's half opens the row, after the repetition.
            h200(if model == "resnet50" {
                format!("| {rep} {row}")
            } else {
                row
            })
        })
        .collect()
}

/// P99 at half the saturation rate, eager and with graphs, as the 2026-12-03 table has it.
fn serve_graphs_p99(model: &str, body: &str, name: &str) -> Vec<Claim> {
    [("", "eager"), ("+graphs", "graphs")]
        .iter()
        .map(|(suffix, label)| {
            let p = |pointer: &str| format!("{{JL:1:{model}:p99:{body}{suffix}:{pointer}|.2}}");
            h200(format!(
                "| {name}, {label} | {{JL:1:{model}:p99:{body}{suffix}:/rate}} requests/s | {} ms | {} ms |",
                p("/report/latency_ms/p50_ms"),
                p("/report/latency_ms/p99_ms"),
            ))
        })
        .collect()
}

/// 2026-12-03, call 1: ResNet-50 served eagerly and with `--cuda-graphs`.
pub fn serve_graphs_resnet50() -> Vec<Claim> {
    let mut claims = serve_graphs_rows("resnet50", "u8");
    claims.extend(serve_graphs_p99("resnet50", "u8", "ResNet-50 u8"));
    claims.push(h200(format!(
        "which this time ran at {{JL:*:resnet50:infer-batch:none:{SIDE_INFER}|int|range}} images/s"
    )));
    claims.push(readme("with P99 {JL:1:resnet50:p99:u8+graphs:/report/latency_ms/p99_ms|.2} ms at half its saturation rate against {JL:1:resnet50:p99:u8:/report/latency_ms/p99_ms|.2} ms eager"));
    claims
}

/// 2026-12-03, call 2: BERT-base served eagerly and with `--cuda-graphs`.
pub fn serve_graphs_bert_base() -> Vec<Claim> {
    let mut claims = serve_graphs_rows("bert-base", "i64");
    claims.extend(serve_graphs_p99("bert-base", "i64", "BERT-base"));
    claims.push(h200(format!(
        "an eager twin that moved {{JL:*:bert-base:infer-batch:none:{SIDE_INFER}|int|range}}"
    )));
    claims
}
