//! The network a job runs, its synthetic batch and its loss, one arm per model. This is
//! the only place that maps a [`ModelKind`] to a concrete architecture and task.

use tch::{nn, Device, Kind, Reduction, TchError, Tensor};

use super::bert::{BertClassifier, BertConfig};
use super::gpt2::{Gpt2, Gpt2Config};
use super::resnet::{Resnet, ResnetConfig};
use super::shim;
use super::spec::{ModelKind, TorchJobSettings};
use super::vit::{Vit, VitConfig};
use super::TorchError;

/// Label value the losses skip, PyTorch's and Hugging Face's `ignore_index`.
const IGNORE_INDEX: i64 = -100;

#[derive(Debug)]
pub enum Network {
    Resnet(Resnet),
    Bert(BertClassifier),
    Gpt2(Gpt2),
    Vit(Vit),
}

/// A batch made once from the seed and reused by every step, so that steps measure the
/// model and not data loading or host-to-device copies.
#[derive(Debug)]
pub struct SyntheticBatch {
    /// Images (batch, 3, size, size), float32, or token ids (batch, seq), int64.
    pub inputs: Tensor,
    /// Class or label ids (batch), or next-token ids (batch, seq) with the last one ignored.
    pub targets: Tensor,
}

impl Network {
    /// Registers the network's parameters in `path`. tch's layer constructors panic when
    /// allocation fails; the caller catches that.
    pub fn build(path: &nn::Path, model: ModelKind, tiny: bool, image_size: Option<usize>) -> Self {
        match model {
            ModelKind::Resnet50 => Network::Resnet(Resnet::new(path, &resnet_config(tiny))),
            ModelKind::BertBase => Network::Bert(BertClassifier::new(path, &bert_config(tiny))),
            ModelKind::Gpt2Small => Network::Gpt2(Gpt2::new(path, &gpt2_config(tiny))),
            ModelKind::VitB16 => Network::Vit(Vit::new(path, &vit_config(tiny, image_size))),
        }
    }

    /// Logits: (batch, classes) or, for GPT-2, (batch, seq, vocab).
    pub fn forward_t(&self, inputs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        match self {
            Network::Resnet(net) => net.forward_t(inputs, train),
            Network::Bert(net) => net.forward_t(inputs, train),
            Network::Gpt2(net) => net.forward_t(inputs, train),
            Network::Vit(net) => net.forward_t(inputs, train),
        }
    }

    /// Mean cross-entropy. For GPT-2 the logits are upcast to float32 first and every
    /// position predicts the next token, as Hugging Face's `ForCausalLMLoss` does.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor, TchError> {
        let (logits, targets) = match self {
            Network::Gpt2(_) => {
                let n_classes = logits.size().last().copied().unwrap_or(1);
                (
                    logits.f_to_kind(Kind::Float)?.f_view([-1, n_classes])?,
                    targets.f_view([-1])?,
                )
            }
            _ => (logits.shallow_clone(), targets.shallow_clone()),
        };
        logits.f_cross_entropy_loss(&targets, None::<Tensor>, Reduction::Mean, IGNORE_INDEX, 0.0)
    }
}

impl SyntheticBatch {
    /// Standard-normal images with uniform class labels, or uniform token ids; GPT-2's
    /// targets are its inputs shifted left by one with the last position ignored.
    pub fn new(settings: &TorchJobSettings) -> Result<Self, TorchError> {
        let batch = settings.batch_size as i64;
        let device = settings.device;
        let model = settings.model;
        let wrap = |source| TorchError::Step {
            model,
            kind: settings.kind,
            during: "making the synthetic batch",
            source,
        };
        match model {
            ModelKind::Resnet50 | ModelKind::VitB16 => {
                let size = settings.image_size.unwrap_or(0) as i64;
                let n_classes = match model {
                    ModelKind::Resnet50 => resnet_config(settings.tiny).n_classes,
                    _ => vit_config(settings.tiny, settings.image_size).n_classes,
                };
                let images =
                    Tensor::f_randn([batch, 3, size, size], (Kind::Float, device)).map_err(wrap)?;
                let images = if settings.channels_last {
                    shim::channels_last(&images)?
                } else {
                    images
                };
                Ok(Self {
                    inputs: images,
                    targets: Tensor::f_randint(n_classes, [batch], (Kind::Int64, device))
                        .map_err(wrap)?,
                })
            }
            ModelKind::BertBase => {
                let tokens = random_tokens(bert_config(settings.tiny).vocab_size, settings, device)
                    .map_err(wrap)?;
                let labels =
                    Tensor::f_randint(BertClassifier::N_LABELS, [batch], (Kind::Int64, device))
                        .map_err(wrap)?;
                Ok(Self {
                    inputs: tokens,
                    targets: labels,
                })
            }
            ModelKind::Gpt2Small => {
                let tokens = random_tokens(gpt2_config(settings.tiny).vocab_size, settings, device)
                    .map_err(wrap)?;
                let targets = shifted_targets(&tokens).map_err(wrap)?;
                Ok(Self {
                    inputs: tokens,
                    targets,
                })
            }
        }
    }
}

fn random_tokens(
    vocab_size: i64,
    settings: &TorchJobSettings,
    device: Device,
) -> Result<Tensor, TchError> {
    let shape = [
        settings.batch_size as i64,
        settings.seq_len.unwrap_or(0) as i64,
    ];
    Tensor::f_randint(vocab_size, shape, (Kind::Int64, device))
}

/// `pad(tokens, (0, 1), value=-100)[:, 1:]`: position t is labelled with token t + 1 and
/// the last position, which has no next token, is ignored.
fn shifted_targets(tokens: &Tensor) -> Result<Tensor, TchError> {
    let (batch, seq) = tokens.size2()?;
    let ignored = Tensor::f_full([batch, 1], IGNORE_INDEX, (Kind::Int64, tokens.device()))?;
    Tensor::f_cat(&[&tokens.f_narrow(1, 1, seq - 1)?, &ignored], 1)
}

pub fn resnet_config(tiny: bool) -> ResnetConfig {
    if tiny {
        ResnetConfig::tiny()
    } else {
        ResnetConfig::default()
    }
}

pub fn bert_config(tiny: bool) -> BertConfig {
    if tiny {
        BertConfig::tiny()
    } else {
        BertConfig::default()
    }
}

pub fn gpt2_config(tiny: bool) -> Gpt2Config {
    if tiny {
        Gpt2Config::tiny()
    } else {
        Gpt2Config::default()
    }
}

/// ViT's position embedding depends on the image size, so the config follows the spec's.
pub fn vit_config(tiny: bool, image_size: Option<usize>) -> VitConfig {
    let base = if tiny {
        VitConfig::tiny()
    } else {
        VitConfig::default()
    };
    VitConfig {
        image_size: image_size.map_or(base.image_size, |size| size as i64),
        ..base
    }
}
