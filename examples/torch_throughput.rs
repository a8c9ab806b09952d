//! Measures one torch job alone and prints its throughput, with the flags and JSON keys of
//! `bench/reference/pytorch_eager.py`, so the two can be run side by side on a GPU:
//!
//!     scripts/with-libtorch.sh cargo run --release --features torch --example torch_throughput -- \
//!         --model resnet50 --mode train --json
//!
//! A stopgap until the workload runs through `gpushare run`; it times `TorchJob::step`,
//! which synchronizes the device before returning.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use gpushare::workload::torch::{
    device_name, parse_device, JobKind, ModelKind, OptimizerKind, Precision, TorchJob, TorchJobSpec,
};
use serde::de::DeserializeOwned;

#[derive(Debug, Parser)]
struct Args {
    /// resnet50, bert-base, gpt2-small or vit-b16.
    #[arg(long)]
    model: String,
    /// train or infer.
    #[arg(long, default_value = "train")]
    mode: String,
    /// Items (images or sequences) per step; default: the model's.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tokens per sequence (bert-base, gpt2-small).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Image height and width in pixels (resnet50, vit-b16).
    #[arg(long)]
    image_size: Option<usize>,
    /// fp32 or bf16.
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// NHWC images and convolution weights (image models).
    #[arg(long)]
    channels_last: bool,
    /// sgd or adamw; default: sgd for resnet50, else adamw.
    #[arg(long)]
    optimizer: Option<String>,
    /// Untimed steps first.
    #[arg(long, default_value_t = 10)]
    warmup_steps: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Seed of initialisation, inputs and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cuda, cuda:N or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Use the model's tiny configuration.
    #[arg(long)]
    tiny: bool,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = TorchJobSpec {
        kind: parse_enum::<JobKind>("mode", &args.mode)?,
        batch_size: args.batch_size,
        seq_len: args.seq_len,
        image_size: args.image_size,
        precision: parse_enum::<Precision>("precision", &args.precision)?,
        channels_last: args.channels_last,
        optimizer: args
            .optimizer
            .as_deref()
            .map(|text| parse_enum::<OptimizerKind>("optimizer", text))
            .transpose()?,
        seed: args.seed,
        device: parse_device(&args.device)?,
        tiny: args.tiny,
        ..TorchJobSpec::new(args.model.parse::<ModelKind>()?)
    };
    let mut job = TorchJob::new(&spec)?;
    job.warm_up(args.warmup_steps)?;
    let mut step_s = Vec::with_capacity(args.steps);
    let mut items = 0_u64;
    for _ in 0..args.steps {
        let start = Instant::now();
        items += job.step()?;
        step_s.push(start.elapsed().as_secs_f64());
    }
    let elapsed_s: f64 = step_s.iter().sum();
    let settings = job.settings();
    let per_s = |count: u64| (elapsed_s > 0.0).then(|| count as f64 / elapsed_s);
    let result = serde_json::json!({
        "model": settings.model,
        "mode": settings.kind,
        "batch_size": settings.batch_size,
        "seq_len": settings.seq_len,
        "image_size": settings.image_size,
        "precision": settings.precision,
        "channels_last": settings.channels_last,
        "optimizer": settings.optimizer,
        "device": device_name(settings.device),
        "runtime": "tch",
        "parameter_count": job.parameter_count(),
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "elapsed_s": elapsed_s,
        "step_ms_median": median(&step_s).map(|s| s * 1e3),
        "item_name": job.item_name(),
        "throughput_items_per_s": per_s(items),
        "throughput_tokens_per_s": job.tokens_per_step().and_then(|t| per_s(t * args.steps as u64)),
        "memory_peak_bytes": job.memory_peak_bytes(),
    });
    if args.json {
        println!("{result}");
    } else {
        println!(
            "{} {} {:?} batch {}: {:.1} {}/s, median step {:.2} ms",
            settings.model,
            settings.kind,
            settings.precision,
            settings.batch_size,
            result["throughput_items_per_s"].as_f64().unwrap_or(0.0),
            job.item_name(),
            result["step_ms_median"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

/// A value of one of the spec's enums from its scenario-file name (`train`, `bf16`, ...).
fn parse_enum<T: DeserializeOwned>(flag: &str, text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .with_context(|| format!("--{flag} {text:?} is not one of its values"))
}

/// Python's `statistics.median`, as the reference script reports.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}
