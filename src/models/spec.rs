//! What a torch job runs, as a scenario states it ([`TorchJobSpec`], serde) and as the job
//! resolved it ([`TorchJobSettings`]: every default filled in and checked). Pure data: this
//! file touches no tensor.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::bert::BertConfig;
use super::error::TorchError;
use super::gpt2::Gpt2Config;
use super::vit::VitConfig;

/// The networks a torch job can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    /// torchvision's ResNet-50, ImageNet classification (1000 classes).
    #[serde(rename = "resnet50")]
    Resnet50,
    /// BERT-base (uncased) with a 2-label sequence-classification head.
    #[serde(rename = "bert-base")]
    BertBase,
    /// GPT-2 small, causal language modelling.
    #[serde(rename = "gpt2-small")]
    Gpt2Small,
    /// torchvision's ViT-B/16, ImageNet classification (1000 classes).
    #[serde(rename = "vit-b16")]
    VitB16,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Resnet50,
        ModelKind::BertBase,
        ModelKind::Gpt2Small,
        ModelKind::VitB16,
    ];

    /// The name used in scenario files and workload names (`train.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Resnet50 => "resnet50",
            ModelKind::BertBase => "bert-base",
            ModelKind::Gpt2Small => "gpt2-small",
            ModelKind::VitB16 => "vit-b16",
        }
    }

    /// Whether the model takes images (else token sequences).
    pub fn takes_images(self) -> bool {
        matches!(self, ModelKind::Resnet50 | ModelKind::VitB16)
    }

    /// Items per step when the spec gives none: sizes usual for one GPU of the H200's class.
    pub fn default_batch_size(self, tiny: bool) -> usize {
        match (self, tiny) {
            (_, true) => 2,
            (ModelKind::Resnet50 | ModelKind::VitB16, false) => 64,
            (ModelKind::BertBase, false) => 32,
            (ModelKind::Gpt2Small, false) => 8,
        }
    }

    /// ResNet-50 trains with SGD and momentum, the transformers with AdamW, as usual.
    pub fn default_optimizer(self) -> OptimizerKind {
        match self {
            ModelKind::Resnet50 => OptimizerKind::Sgd,
            _ => OptimizerKind::AdamW,
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = TorchError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|model| model.name() == text)
            .ok_or_else(|| TorchError::ParseModel {
                text: text.to_owned(),
            })
    }
}

/// What one step does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Forward, loss, backward and optimizer step.
    #[default]
    Train,
    /// Forward only, without autograd, in evaluation mode (no dropout, batch-norm running
    /// statistics).
    Infer,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::Train => "train",
            JobKind::Infer => "infer",
        })
    }
}

/// Numeric precision of the forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32 (convolutions may use TF32, PyTorch's default on NVIDIA GPUs).
    #[default]
    Fp32,
    /// float32 parameters, forward in bf16 autocast (`torch.autocast(dtype=torch.bfloat16)`).
    Bf16,
}

/// The optimizer of a train job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum 0.9, fused.
    Sgd,
    /// AdamW, fused.
    #[serde(rename = "adamw")]
    AdamW,
}

/// A torch job as a scenario states it; defaults follow each field's doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchJobSpec {
    /// Network: `resnet50`, `bert-base`, `gpt2-small` or `vit-b16`.
    pub model: ModelKind,
    /// `train` or `infer`. Default `train`.
    #[serde(default)]
    pub kind: JobKind,
    /// Items per step, in images or sequences. Default: [`ModelKind::default_batch_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Sequence length in tokens, for bert-base and gpt2-small (image models ignore it).
    /// Default 128 for bert-base, 1024 for gpt2-small; 16 when `tiny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<usize>,
    /// Image height and width in pixels, for resnet50 and vit-b16 (token models ignore it).
    /// Default 224; 32 when `tiny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// `fp32` or `bf16` (autocast). Default `fp32`.
    #[serde(default)]
    pub precision: Precision,
    /// Keep images and convolution weights channels-last (NHWC in memory), for image
    /// models (token models ignore it). Default false.
    #[serde(default)]
    pub channels_last: bool,
    /// `sgd` or `adamw`, for train jobs (infer jobs ignore it).
    /// Default: [`ModelKind::default_optimizer`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerKind>,
    /// Seed of parameter initialisation, synthetic inputs and dropout. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// `cpu`, `cuda` (device 0) or `cuda:N`. Default `cuda:0`.
    #[serde(default = "default_device", with = "device_serde")]
    pub device: Device,
    /// Use the model's tiny configuration (a few thousand parameters, for CPU tests).
    /// Default false.
    #[serde(default)]
    pub tiny: bool,
    /// Infer jobs on a CUDA device: capture a step as one CUDA graph after warm-up and
    /// replay it. Default false.
    #[serde(default)]
    pub cuda_graph: bool,
}

fn default_device() -> Device {
    Device::Cuda(0)
}

impl TorchJobSpec {
    /// A spec with every default: train the full-size model on `cuda:0` in fp32.
    pub fn new(model: ModelKind) -> Self {
        Self {
            model,
            kind: JobKind::default(),
            batch_size: None,
            seq_len: None,
            image_size: None,
            precision: Precision::default(),
            channels_last: false,
            optimizer: None,
            seed: 0,
            device: default_device(),
            tiny: false,
            cuda_graph: false,
        }
    }

    /// Fills in the defaults and checks the sizes against the model.
    pub fn resolve(&self) -> Result<TorchJobSettings, TorchError> {
        let model = self.model;
        let invalid = |reason: String| TorchError::InvalidSpec { model, reason };
        if self.cuda_graph && self.kind == JobKind::Train {
            return Err(invalid(
                "cuda_graph captures inference steps only; a train job runs eagerly".to_owned(),
            ));
        }
        if self.cuda_graph && !self.device.is_cuda() {
            return Err(invalid(format!(
                "cuda_graph needs a CUDA device, and this job is on {}",
                device_name(self.device)
            )));
        }
        let batch_size = self
            .batch_size
            .unwrap_or_else(|| model.default_batch_size(self.tiny));
        if batch_size == 0 {
            return Err(invalid("batch_size must be at least 1".to_owned()));
        }
        let (seq_len, image_size) = if model.takes_images() {
            let default = if self.tiny { 32 } else { 224 };
            let image_size = self.image_size.unwrap_or(default);
            if image_size == 0 {
                return Err(invalid("image_size must be at least 1 pixel".to_owned()));
            }
            if model == ModelKind::VitB16 {
                let patch = if self.tiny {
                    VitConfig::tiny().patch_size
                } else {
                    VitConfig::default().patch_size
                };
                if image_size as i64 % patch != 0 {
                    return Err(invalid(format!(
                        "image_size {image_size} is not a multiple of the {patch}-pixel patch"
                    )));
                }
            }
            (None, Some(image_size))
        } else {
            let (default, max_positions) = match (model, self.tiny) {
                (ModelKind::BertBase, false) => (128, BertConfig::default().max_positions),
                (ModelKind::BertBase, true) => (16, BertConfig::tiny().max_positions),
                (_, false) => (1024, Gpt2Config::default().max_positions),
                (_, true) => (16, Gpt2Config::tiny().max_positions),
            };
            let seq_len = self.seq_len.unwrap_or(default);
            if seq_len == 0 || seq_len as i64 > max_positions {
                return Err(invalid(format!(
                    "seq_len {seq_len} is outside 1..={max_positions} tokens"
                )));
            }
            (Some(seq_len), None)
        };
        Ok(TorchJobSettings {
            model,
            kind: self.kind,
            batch_size,
            seq_len,
            image_size,
            precision: self.precision,
            channels_last: self.channels_last && model.takes_images(),
            optimizer: match self.kind {
                JobKind::Train => Some(self.optimizer.unwrap_or(model.default_optimizer())),
                JobKind::Infer => None,
            },
            seed: self.seed,
            device: self.device,
            tiny: self.tiny,
            cuda_graph: self.cuda_graph,
        })
    }
}

/// What a job runs with every default resolved; serialized into results as it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorchJobSettings {
    /// Network.
    pub model: ModelKind,
    /// `train` or `infer`.
    pub kind: JobKind,
    /// Items per step, in images or sequences.
    pub batch_size: usize,
    /// Tokens per sequence; absent for image models.
    pub seq_len: Option<usize>,
    /// Image height and width in pixels; absent for token models.
    pub image_size: Option<usize>,
    /// `fp32` or `bf16`.
    pub precision: Precision,
    /// Whether images and convolution weights are channels-last (only ever for image models).
    pub channels_last: bool,
    /// The optimizer; absent for infer jobs.
    pub optimizer: Option<OptimizerKind>,
    /// Seed of initialisation, inputs and dropout.
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    #[serde(with = "device_serde")]
    pub device: Device,
    /// Whether the tiny configuration runs.
    pub tiny: bool,
    /// Whether an infer step is a CUDA graph replay (left out of results when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cuda_graph: bool,
}

/// `cpu`, `cuda` or `cuda:N` to a device.
pub fn parse_device(text: &str) -> Result<Device, TorchError> {
    let parse_error = || TorchError::ParseDevice {
        text: text.to_owned(),
    };
    match text {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|idx| idx.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(parse_error),
    }
}

/// A device's name as [`parse_device`] reads it (`mps` and `vulkan` for the others).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(idx) => format!("cuda:{idx}"),
        Device::Mps => "mps".to_owned(),
        Device::Vulkan => "vulkan".to_owned(),
    }
}

/// `tch::Device` as its name, for serde's `with`.
mod device_serde {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use tch::Device;

    pub fn serialize<S: Serializer>(device: &Device, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::device_name(*device))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Device, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_device(&text).map_err(de::Error::custom)
    }
}
