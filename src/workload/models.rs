//! `train.<model>` and `infer.batch.<model>`: the tch model jobs of [`super::torch`] as
//! workloads. This file is compiled with or without the `torch` feature, so
//! `gpushare list` and `gpushare validate` know the model workloads either way; without
//! the feature they are listed as unavailable with what to do.

use crate::limits::workload as limits;
use std::time::{Duration, Instant};

use super::{Availability, ParamInfo, ParamKind, Params, Workload, WorkloadError};

/// The models, in the order of [`MODEL_NAMES`]; the const generic index of [`build`].
pub const MODEL_NAMES: [&str; 4] = ["resnet50", "bert-base", "gpt2-small", "vit-b16"];

/// Warm-up runs at least this many steps (allocator growth, cuDNN autotuning) even when
/// the scenario's warm-up time is shorter.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
const MIN_WARMUP_STEPS: usize = 3;

const BATCH_SIZE: ParamInfo = ParamInfo {
    name: "batch_size",
    kind: ParamKind::Int(limits::BATCH_SIZE),
    default: "model's",
    doc: "items per step (resnet50 64, bert-base 32, gpt2-small 8, vit-b16 64; tiny 2)",
};
const SEQ_LEN: ParamInfo = ParamInfo {
    name: "seq_len",
    kind: ParamKind::Int(limits::SEQ_LEN),
    default: "model's",
    doc: "tokens per sequence (bert-base 128, gpt2-small 1024; tiny 16)",
};
const IMAGE_SIZE: ParamInfo = ParamInfo {
    name: "image_size",
    kind: ParamKind::Int(limits::IMAGE_SIZE),
    default: "224",
    doc: "image side in pixels (a multiple of 16 for vit-b16)",
};
const PRECISION: ParamInfo = ParamInfo {
    name: "precision",
    kind: ParamKind::Choice(&["fp32", "bf16"]),
    default: "\"fp32\"",
    doc: "fp32, or bf16 autocast",
};
const CHANNELS_LAST: ParamInfo = ParamInfo {
    name: "channels_last",
    kind: ParamKind::Bool,
    default: "false",
    doc: "NHWC memory layout",
};
const OPTIMIZER: ParamInfo = ParamInfo {
    name: "optimizer",
    kind: ParamKind::Choice(&["sgd", "adamw"]),
    default: "model's",
    doc: "sgd (resnet50's default) or adamw (the transformers')",
};
const DEVICE: ParamInfo = ParamInfo {
    name: "device",
    kind: ParamKind::Choice(&["cuda", "cpu"]),
    default: "\"cuda\"",
    doc: "cuda (the first visible GPU) or cpu (for tests with tiny = true)",
};
const CUDA_GRAPH: ParamInfo = ParamInfo {
    name: "cuda_graph",
    kind: ParamKind::Bool,
    default: "false",
    doc: "capture the forward pass as one CUDA graph after warm-up and replay it each \
          step (one launch, not one per kernel); device = \"cuda\" only",
};
const TINY: ParamInfo = ParamInfo {
    name: "tiny",
    kind: ParamKind::Bool,
    default: "false",
    doc: "a few-layer version of the model, for CPU tests; never a benchmark",
};

/// The image models' (resnet50, vit-b16) training parameters: only what applies, so
/// `gpushare list` shows it and validation refuses the rest (`seq_len` for ResNet-50).
pub const IMAGE_TRAIN_PARAMS: &[ParamInfo] = &[
    BATCH_SIZE,
    IMAGE_SIZE,
    PRECISION,
    CHANNELS_LAST,
    OPTIMIZER,
    DEVICE,
    TINY,
];
/// The image models' inference parameters: no optimizer.
pub const IMAGE_INFER_PARAMS: &[ParamInfo] = &[
    BATCH_SIZE,
    IMAGE_SIZE,
    PRECISION,
    CHANNELS_LAST,
    DEVICE,
    TINY,
    CUDA_GRAPH,
];
/// The text models' (bert-base, gpt2-small) training parameters.
pub const TEXT_TRAIN_PARAMS: &[ParamInfo] =
    &[BATCH_SIZE, SEQ_LEN, PRECISION, OPTIMIZER, DEVICE, TINY];
/// The text models' inference parameters.
pub const TEXT_INFER_PARAMS: &[ParamInfo] =
    &[BATCH_SIZE, SEQ_LEN, PRECISION, DEVICE, TINY, CUDA_GRAPH];

pub const AVAILABILITY: Availability = if cfg!(feature = "torch") {
    Availability::Available
} else {
    Availability::Unavailable(
        "built without the `torch` feature: build with `scripts/with-libtorch.sh cargo build --release --features torch` (README, \"Torch workloads\")",
    )
};

/// Builds model `MODEL` (an index into [`MODEL_NAMES`]) for training or inference.
pub fn build<const MODEL: usize, const TRAIN: bool>(
    params: &Params,
    seed: u64,
) -> Result<Box<dyn Workload>, WorkloadError> {
    imp::build(MODEL, TRAIN, params, seed)
}

/// The workload's name as scenario files write it.
pub fn workload_name(model: usize, train: bool) -> String {
    if train {
        format!("train.{}", MODEL_NAMES[model])
    } else {
        format!("infer.batch.{}", MODEL_NAMES[model])
    }
}

/// Runs warm-up steps until `warmup` has passed, and at least [`MIN_WARMUP_STEPS`].
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
fn warm_up(
    warmup: Duration,
    mut step: impl FnMut() -> Result<(), WorkloadError>,
) -> Result<(), WorkloadError> {
    let start = Instant::now();
    let mut n = 0;
    while n < MIN_WARMUP_STEPS || start.elapsed() < warmup {
        step()?;
        n += 1;
    }
    Ok(())
}

#[cfg(feature = "torch")]
mod imp {
    use std::time::Duration;

    use super::super::torch::{
        parse_device, JobKind, ModelKind, OptimizerKind, Precision, TorchJob, TorchJobSpec,
    };
    use super::{workload_name, Params, Workload, WorkloadError};
    use crate::workload::Step;

    pub fn build(
        model: usize,
        train: bool,
        params: &Params,
        seed: u64,
    ) -> Result<Box<dyn Workload>, WorkloadError> {
        let name = workload_name(model, train);
        let size = |param: &str| -> Result<Option<usize>, WorkloadError> {
            match params.0.get(param) {
                None => Ok(None),
                Some(_) => {
                    let value = params.i64_or(param, 0);
                    usize::try_from(value)
                        .ok()
                        .filter(|v| *v > 0)
                        .map(Some)
                        .ok_or_else(|| WorkloadError::ParamValue {
                            workload: name.clone(),
                            param: param.to_string(),
                            reason: format!("must be a positive integer, got {value}"),
                        })
                }
            }
        };
        let mut spec = TorchJobSpec::new(ModelKind::ALL[model]);
        spec.kind = if train {
            JobKind::Train
        } else {
            JobKind::Infer
        };
        spec.batch_size = size("batch_size")?;
        spec.seq_len = size("seq_len")?;
        spec.image_size = size("image_size")?;
        spec.precision = match params.str_or("precision", "fp32") {
            "bf16" => Precision::Bf16,
            _ => Precision::Fp32,
        };
        spec.channels_last = params.bool_or("channels_last", false);
        spec.optimizer = match params.0.get("optimizer") {
            None => None,
            Some(_) if params.str_or("optimizer", "") == "adamw" => Some(OptimizerKind::AdamW),
            Some(_) => Some(OptimizerKind::Sgd),
        };
        spec.tiny = params.bool_or("tiny", false);
        spec.cuda_graph = params.bool_or("cuda_graph", false);
        spec.seed = seed;
        spec.device = parse_device(params.str_or("device", "cuda")).map_err(|e| {
            WorkloadError::ParamValue {
                workload: name.clone(),
                param: "device".into(),
                reason: e.to_string(),
            }
        })?;
        if spec.cuda_graph && !spec.device.is_cuda() {
            return Err(WorkloadError::ParamValue {
                workload: name.clone(),
                param: "cuda_graph".into(),
                reason: "CUDA graphs need device = \"cuda\"; drop cuda_graph or the cpu device"
                    .into(),
            });
        }
        // Sizes are checked now, so a bad scenario fails before any worker starts a GPU.
        spec.resolve().map_err(|e| WorkloadError::ParamValue {
            workload: name.clone(),
            param: "batch_size/seq_len/image_size".into(),
            reason: e.to_string(),
        })?;
        Ok(Box::new(TorchWorkload {
            name,
            spec,
            job: None,
            steps: 0,
        }))
    }

    struct TorchWorkload {
        name: String,
        spec: TorchJobSpec,
        /// Built in `prepare`, on the worker's own thread, so the CUDA context belongs to it.
        job: Option<TorchJob>,
        steps: u64,
    }

    impl TorchWorkload {
        fn job(&mut self) -> Result<&mut TorchJob, WorkloadError> {
            self.job.as_mut().ok_or_else(|| WorkloadError::Step {
                workload: self.name.clone(),
                step: self.steps,
                reason: "step before prepare".into(),
            })
        }
    }

    impl Workload for TorchWorkload {
        fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
            let job = TorchJob::new(&self.spec).map_err(|e| WorkloadError::Prepare {
                workload: self.name.clone(),
                reason: crate::errors::error_chain(&e),
            })?;
            let job = self.job.insert(job);
            let name = self.name.clone();
            super::warm_up(warmup, || {
                job.step().map(|_| ()).map_err(|e| WorkloadError::Prepare {
                    workload: name.clone(),
                    reason: crate::errors::error_chain(&e),
                })
            })
        }

        fn step(&mut self) -> Result<Step, WorkloadError> {
            let step = self.steps;
            let name = self.name.clone();
            let items = self.job()?.step().map_err(|e| WorkloadError::Step {
                workload: name,
                step,
                reason: crate::errors::error_chain(&e),
            })?;
            self.steps += 1;
            Ok(Step {
                items,
                latency_s: None,
                failed: 0,
            })
        }

        fn memory_peak_bytes(&self) -> Option<u64> {
            self.job.as_ref().and_then(|j| j.memory_peak_bytes())
        }
    }
}

#[cfg(not(feature = "torch"))]
mod imp {
    use super::{workload_name, Params, Workload, WorkloadError};

    pub fn build(
        model: usize,
        train: bool,
        _: &Params,
        _: u64,
    ) -> Result<Box<dyn Workload>, WorkloadError> {
        Err(WorkloadError::Unavailable {
            name: workload_name(model, train),
            reason: "built without the `torch` feature".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_runs_at_least_the_minimum_steps() {
        let mut n = 0;
        warm_up(Duration::ZERO, || {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, MIN_WARMUP_STEPS);
    }

    #[cfg(feature = "torch")]
    #[test]
    fn cuda_graph_on_the_cpu_is_refused_naming_the_parameter() {
        use crate::workload::params::ParamValue;
        let params = Params::from_pairs(&[
            ("cuda_graph", ParamValue::Bool(true)),
            ("device", ParamValue::Str("cpu".into())),
            ("tiny", ParamValue::Bool(true)),
        ]);
        let err = build::<0, false>(&params, 0)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("cuda_graph"), "{err}");
        assert!(
            err.contains("CUDA graphs need device = \"cuda\"; drop cuda_graph or the cpu device"),
            "{err}"
        );
    }

    #[test]
    fn names_follow_family_dot_model() {
        assert_eq!(workload_name(0, true), "train.resnet50");
        assert_eq!(workload_name(3, false), "infer.batch.vit-b16");
    }
}
