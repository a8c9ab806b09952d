//! A model in evaluation mode that runs batches the caller gives it: what the inference
//! server (`gpushare serve --model resnet50|bert-base`) puts behind its backend seam.
//!
//! Owns nothing but the network and its parameters on one device; it builds the same
//! architectures a torch job (`workload::torch::TorchJob`) does (same builders, same seed) and runs
//! the same forward pass as an infer step (no autograd, evaluation mode, bf16 autocast when
//! asked). Must not know about HTTP, queues or batching.

use tch::{nn, Device, Kind, Tensor};

use super::build::{autocast_guard, build_on_device, step_error};
use super::cuda_graph::{CudaGraph, GraphPool};
use super::error::TorchError;
use super::network::{bert_config, gpt2_config, resnet_config, vit_config, Network};
use super::shim::CudaEvent;
use super::spec::{JobKind, ModelKind, TorchJobSettings, TorchJobSpec};

/// Per-channel mean (red, green, blue) that image inputs are normalized with, torchvision's
/// ImageNet statistics.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation that image inputs are normalized with (torchvision's).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The float a raw pixel `value` of `channel` becomes:
/// `(value / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]`, what the model does on
/// its device with `u8` images (a channel beyond the third uses the third's statistics).
pub fn normalize_pixel(value: u8, channel: usize) -> f32 {
    let channel = channel.min(2);
    (f32::from(value) / 255.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
}

/// A network in evaluation mode on one device, fed caller-given inputs.
#[derive(Debug)]
pub struct InferenceModel {
    settings: TorchJobSettings,
    network: Network,
    /// Image models only: [`IMAGENET_MEAN`] and [`IMAGENET_STD`] as `[1, 3, 1, 1]` float
    /// tensors on the device, for `u8` images.
    normalization: Option<(Tensor, Tensor)>,
    /// Batch shapes captured as CUDA graphs ([`InferenceModel::capture_graphs`]), smallest
    /// first; empty unless asked for.
    graphs: Vec<GraphedBatch>,
    /// The memory pool every graph of this model shares; made with the first graph.
    graph_pool: Option<GraphPool>,
    /// Owns the parameters that `network` holds handles to.
    _var_store: nn::VarStore,
}

/// One batch size and input element type of the forward pass, captured as a CUDA graph
/// that reads `inputs` and writes `logits`.
#[derive(Debug)]
struct GraphedBatch {
    kind: Kind,
    rows: usize,
    /// Where a batch's inputs are copied before a replay: `[rows, ..item_shape]` on the
    /// device. Rows beyond a smaller batch's keep an earlier batch's values, which are
    /// valid inputs; their logits are not read.
    inputs: Tensor,
    /// Where a replay leaves the logits: float32 `[rows, n_outputs]` on the device.
    logits: Tensor,
    graph: CudaGraph,
}

impl InferenceModel {
    /// Builds the spec's network on its device as an infer job would (the spec's `kind` is
    /// taken as `infer`; its batch size only sizes [`InferenceModel::random_inputs`]).
    pub fn new(spec: &TorchJobSpec) -> Result<Self, TorchError> {
        let settings = TorchJobSpec {
            kind: JobKind::Infer,
            ..spec.clone()
        }
        .resolve()?;
        let (var_store, network) = build_on_device(&settings)?;
        let normalization = if settings.model.takes_images() {
            let on_device = |values: &[f32; 3]| {
                Tensor::f_from_slice(values)
                    .and_then(|t| t.f_view([1, 3, 1, 1]))
                    .and_then(|t| t.f_to_device(settings.device))
                    .map_err(step_error(&settings, "making the normalization constants"))
            };
            Some((on_device(&IMAGENET_MEAN)?, on_device(&IMAGENET_STD)?))
        } else {
            None
        };
        Ok(Self {
            settings,
            network,
            normalization,
            graphs: Vec::new(),
            graph_pool: None,
            _var_store: var_store,
        })
    }

    /// The spec with every default resolved (image size, sequence length).
    pub fn settings(&self) -> &TorchJobSettings {
        &self.settings
    }

    /// Shape of one input item: `[3, size, size]` for image models, `[seq_len]` for token
    /// models.
    pub fn item_shape(&self) -> Vec<i64> {
        match (self.settings.image_size, self.settings.seq_len) {
            (Some(size), _) => vec![3, size as i64, size as i64],
            (None, seq_len) => vec![seq_len.unwrap_or(0) as i64],
        }
    }

    /// Element type of the inputs: float32 images (image models take uint8 pixels too, see
    /// [`InferenceModel::forward`]) or int64 token ids.
    pub fn input_kind(&self) -> Kind {
        if self.settings.model.takes_images() {
            Kind::Float
        } else {
            Kind::Int64
        }
    }

    /// Token vocabulary size of a token model (ids must lie in `0..vocab_size`); `None`
    /// for image models.
    pub fn vocab_size(&self) -> Option<i64> {
        match self.settings.model {
            ModelKind::BertBase => Some(bert_config(self.settings.tiny).vocab_size),
            ModelKind::Gpt2Small => Some(gpt2_config(self.settings.tiny).vocab_size),
            ModelKind::Resnet50 | ModelKind::VitB16 => None,
        }
    }

    /// Outputs per item of a classifier: classes for image models, labels for BERT, the
    /// vocabulary for GPT-2 (per position).
    pub fn n_outputs(&self) -> i64 {
        let tiny = self.settings.tiny;
        match self.settings.model {
            ModelKind::Resnet50 => resnet_config(tiny).n_classes,
            ModelKind::VitB16 => vit_config(tiny, self.settings.image_size).n_classes,
            ModelKind::BertBase => super::bert::BertClassifier::N_LABELS,
            ModelKind::Gpt2Small => gpt2_config(tiny).vocab_size,
        }
    }

    /// `n_items` valid random inputs on the model's device (standard-normal images or
    /// uniform token ids), for warm-up.
    pub fn random_inputs(&self, n_items: usize) -> Result<Tensor, TorchError> {
        self.random_inputs_of(self.input_kind(), n_items)
    }

    /// [`InferenceModel::random_inputs`] of element type `kind`: uint8 gives raw pixels
    /// 0..=255, any other kind the model's own inputs.
    pub fn random_inputs_of(&self, kind: Kind, n_items: usize) -> Result<Tensor, TorchError> {
        let shape: Vec<i64> = std::iter::once(n_items as i64)
            .chain(self.item_shape())
            .collect();
        let device = self.settings.device;
        let options = (self.input_kind(), device);
        let inputs = match (kind, self.vocab_size()) {
            (Kind::Uint8, _) => Tensor::f_randint(256, shape.as_slice(), (Kind::Uint8, device)),
            (_, Some(vocab_size)) => Tensor::f_randint(vocab_size, shape.as_slice(), options),
            (_, None) => Tensor::f_randn(shape.as_slice(), options),
        };
        inputs.map_err(step_error(&self.settings, "making warm-up inputs"))
    }

    /// Runs the forward pass on `inputs` (`[n, ..item_shape]`, on any device; copied to
    /// the model's) without autograd, in bf16 autocast when the spec asks, and returns the
    /// logits as float32 on the CPU once the device has finished. An image model also takes
    /// uint8 images (raw pixels 0..=255, a quarter of the bytes to copy): on the device they
    /// become float32, scaled by 1/255, minus [`IMAGENET_MEAN`] and divided by
    /// [`IMAGENET_STD`] per channel (as [`normalize_pixel`]), before the network sees them.
    pub fn forward(&self, inputs: &Tensor) -> Result<Tensor, TorchError> {
        self.submit(inputs)?.wait()
    }

    /// [`InferenceModel::forward`] without waiting: queues the copy in, the forward pass
    /// and the copy of the logits out, and returns at once on a GPU (on the CPU the work
    /// is done when it returns). [`PendingLogits::wait`] waits for this batch alone, so
    /// the next batch can be submitted first and the device goes from one to the other
    /// without idling.
    ///
    /// The copy to the device does not block the host when `inputs` is in page-locked
    /// memory, so the caller must keep `inputs` alive and unchanged until `wait` returns.
    pub fn submit(&self, inputs: &Tensor) -> Result<PendingLogits, TorchError> {
        let settings = &self.settings;
        let logits = {
            let _no_grad = tch::no_grad_guard();
            let inputs = inputs
                .f_to_device_(settings.device, inputs.kind(), true, false)
                .map_err(step_error(settings, "copying the inputs to the device"))?;
            let n_items = inputs.size().first().copied().unwrap_or(0);
            match self.graph_for(inputs.kind(), n_items) {
                Some(graphed) => {
                    // A device-to-device copy into the graph's input rows: it queues without
                    // waiting (tch's copy_ from the host would wait for the copy).
                    graphed
                        .inputs
                        .f_narrow(0, 0, n_items)
                        .and_then(|mut rows| rows.f_copy_(&inputs))
                        .map_err(step_error(settings, "copying the inputs into the graph's"))?;
                    graphed.graph.replay()?;
                    graphed
                        .logits
                        .f_narrow(0, 0, n_items)
                        .map_err(step_error(settings, "reading the graph's logits"))?
                }
                None => self.device_logits(&inputs)?,
            }
        };
        // From a GPU, a non-blocking copy to the CPU lands in page-locked memory that
        // libtorch allocates (and caches); it is complete once the event after it is.
        let logits = logits
            .f_to_device_(Device::Cpu, Kind::Float, true, false)
            .map_err(step_error(settings, "copying the logits to the host"))?;
        let done = match settings.device {
            Device::Cuda(idx) => Some(CudaEvent::record(idx)?),
            _ => None,
        };
        Ok(PendingLogits { logits, done })
    }

    /// The forward pass on inputs already on the device: uint8 images normalized first,
    /// float32 logits out, still on the device. What a CUDA graph captures.
    fn device_logits(&self, inputs: &Tensor) -> Result<Tensor, TorchError> {
        let settings = &self.settings;
        let _no_grad = tch::no_grad_guard();
        let inputs = match (&self.normalization, inputs.kind()) {
            (Some((mean, std)), Kind::Uint8) => inputs
                .f_to_kind(Kind::Float)
                .and_then(|images| images.f_mul_scalar(1.0 / 255.0))
                .and_then(|images| images.f_sub(mean))
                .and_then(|images| images.f_div(std))
                .map_err(step_error(settings, "normalizing the uint8 images"))?,
            _ => inputs.shallow_clone(),
        };
        let logits = {
            let _autocast = autocast_guard(settings)?;
            self.network
                .forward_t(&inputs, false)
                .map_err(step_error(settings, "forward"))?
        };
        logits
            .f_to_kind(Kind::Float)
            .map_err(step_error(settings, "converting the logits to float32"))
    }

    /// Captures the forward pass for inputs of `kind` (the model's [`input_kind`], or
    /// uint8 for an image model) as one CUDA graph per batch size in `sizes`; from then on
    /// [`InferenceModel::submit`] copies a batch of up to the largest size into the
    /// smallest graph that holds it and replays that graph, one launch instead of one per
    /// kernel. Each size runs once eagerly first, so cuDNN has chosen its algorithms; all
    /// graphs share one memory pool. Only on a CUDA device.
    ///
    /// [`input_kind`]: InferenceModel::input_kind
    pub fn capture_graphs(&mut self, kind: Kind, sizes: &[usize]) -> Result<(), TorchError> {
        let accepted =
            kind == self.input_kind() || (kind == Kind::Uint8 && self.normalization.is_some());
        if !accepted {
            return Err(TorchError::InvalidSpec {
                model: self.settings.model,
                reason: format!("it takes no {kind:?} inputs to capture a CUDA graph for"),
            });
        }
        let Device::Cuda(device_idx) = self.settings.device else {
            return Err(TorchError::InvalidSpec {
                model: self.settings.model,
                reason: format!(
                    "CUDA graphs need a CUDA device, and this model is on {}",
                    super::spec::device_name(self.settings.device)
                ),
            });
        };
        let pool = match self.graph_pool {
            Some(pool) => pool,
            None => *self.graph_pool.insert(GraphPool::new()?),
        };
        // Largest first: the shared pool then grows once, to the largest graph's needs.
        let mut sizes: Vec<usize> = sizes.iter().copied().filter(|&rows| rows > 0).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        for rows in sizes {
            if self.graphs.iter().any(|g| g.kind == kind && g.rows == rows) {
                continue;
            }
            let inputs = self.random_inputs_of(kind, rows)?;
            // Eagerly once: cuDNN picks its algorithms for this shape outside the capture.
            let _warm = self.device_logits(&inputs)?;
            let (graph, logits) =
                CudaGraph::capture(device_idx, pool, || self.device_logits(&inputs))?;
            self.graphs.push(GraphedBatch {
                kind,
                rows,
                inputs,
                logits,
                graph,
            });
        }
        self.graphs.sort_by_key(|g| g.rows);
        Ok(())
    }

    /// The smallest graph for `kind` that holds `n_items` rows.
    fn graph_for(&self, kind: Kind, n_items: i64) -> Option<&GraphedBatch> {
        let n_items = usize::try_from(n_items).ok().filter(|&n| n > 0)?;
        self.graphs
            .iter()
            .find(|g| g.kind == kind && g.rows >= n_items)
    }
}

/// The logits of a batch [`InferenceModel::submit`] queued, on the host once
/// [`PendingLogits::wait`] returns.
#[derive(Debug)]
#[must_use = "the logits are valid only after `wait`"]
pub struct PendingLogits {
    logits: Tensor,
    /// Completes when the copy of the logits has; `None` on the CPU.
    done: Option<CudaEvent>,
}

impl PendingLogits {
    /// Waits until the device has finished this batch (later batches may still run) and
    /// returns its logits as float32 on the CPU. An error of the device work (an illegal
    /// access, a fault under MPS) comes back here.
    pub fn wait(self) -> Result<Tensor, TorchError> {
        if let Some(done) = &self.done {
            done.synchronize()?;
        }
        Ok(self.logits)
    }
}

// The inference server builds the model on its batcher thread and keeps it there, but the
// backend trait requires `Send`.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<InferenceModel>();
    assert_send::<PendingLogits>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::spec::Precision;

    fn tiny_cpu(model: ModelKind, precision: Precision) -> InferenceModel {
        InferenceModel::new(&TorchJobSpec {
            device: Device::Cpu,
            tiny: true,
            precision,
            ..TorchJobSpec::new(model)
        })
        .unwrap()
    }

    #[test]
    fn graphs_are_refused_for_inputs_the_model_does_not_take_and_off_a_gpu() {
        let mut bert = tiny_cpu(ModelKind::BertBase, Precision::Fp32);
        let err = bert
            .capture_graphs(Kind::Uint8, &[1])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "configure bert-base: it takes no Uint8 inputs to capture a CUDA graph for"
        );
        let mut resnet = tiny_cpu(ModelKind::Resnet50, Precision::Fp32);
        let err = resnet
            .capture_graphs(Kind::Uint8, &[1])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "configure resnet50: CUDA graphs need a CUDA device, and this model is on cpu"
        );
    }

    #[test]
    fn resnet_maps_images_to_class_logits() {
        let model = tiny_cpu(ModelKind::Resnet50, Precision::Fp32);
        assert_eq!(model.item_shape(), [3, 32, 32]);
        assert_eq!(model.input_kind(), Kind::Float);
        assert_eq!(model.vocab_size(), None);
        let logits = model.forward(&model.random_inputs(3).unwrap()).unwrap();
        assert_eq!(logits.size(), [3, model.n_outputs()]);
        assert_eq!(logits.kind(), Kind::Float);
    }

    #[test]
    fn bert_maps_token_ids_to_two_logits_also_in_bf16() {
        let model = tiny_cpu(ModelKind::BertBase, Precision::Bf16);
        assert_eq!(model.item_shape(), [16]);
        assert_eq!(model.vocab_size(), Some(128));
        let logits = model.forward(&model.random_inputs(2).unwrap()).unwrap();
        assert_eq!(logits.size(), [2, 2]);
        assert_eq!(logits.kind(), Kind::Float);
    }

    #[test]
    fn uint8_images_are_normalized_as_the_host_would_in_both_precisions() {
        for (precision, tolerance) in [(Precision::Fp32, 1e-4), (Precision::Bf16, 5e-2)] {
            let model = tiny_cpu(ModelKind::Resnet50, precision);
            let n = 2 * 3 * 32 * 32;
            let pixels: Vec<u8> = (0..n).map(|i| ((i * 37) % 256) as u8).collect();
            let floats: Vec<f32> = pixels
                .iter()
                .enumerate()
                .map(|(i, &value)| normalize_pixel(value, (i / (32 * 32)) % 3))
                .collect();
            let shape = [2_i64, 3, 32, 32];
            let from_u8 = model
                .forward(&Tensor::from_slice(&pixels).view(shape))
                .unwrap();
            let from_f32 = model
                .forward(&Tensor::from_slice(&floats).view(shape))
                .unwrap();
            let difference = (&from_u8 - &from_f32).abs().max().double_value(&[]);
            let scale = from_f32.abs().max().double_value(&[]).max(1.0);
            assert!(
                difference <= tolerance * scale,
                "{precision:?}: logits differ by {difference} (scale {scale})"
            );
        }
        assert_eq!(normalize_pixel(0, 0), -0.485 / 0.229);
        assert_eq!(normalize_pixel(255, 2), (1.0 - 0.406) / 0.225);
    }

    #[test]
    fn evaluation_mode_is_deterministic() {
        let model = tiny_cpu(ModelKind::BertBase, Precision::Fp32);
        let inputs = model.random_inputs(2).unwrap();
        let (a, b) = (
            model.forward(&inputs).unwrap(),
            model.forward(&inputs).unwrap(),
        );
        assert!(a.equal(&b), "dropout ran in evaluation mode");
    }
}
