//! `resnet50` and `bert-base` behind the server's backend seam (`torch` feature).
//!
//! Owns the translation between the server's batches and tch tensors, and the warm-up
//! that makes the first real batch as fast as the rest. The models themselves are
//! [`crate::models`]' ([`InferenceModel`]); this file must not define layers, and must not
//! know about HTTP or queues. Everything here runs on the batcher thread, which therefore
//! owns the CUDA context.

use tch::{Device, Kind};

use super::backend::{Batch, InferenceBackend};
use super::config::{ServeArgs, ServeModel, ServePrecision};
use super::error::BackendError;
use super::tensor::{Dtype, Tensor, TensorData};
use crate::models::{
    device_name, parse_device, InferenceModel, ModelKind, Precision, TorchJobSpec,
};

/// Warm-up batches of `max_batch_size` run after one batch of every smaller size: the
/// caching allocator settles and nothing is left for cuDNN to time on a real request.
const WARM_UP_FULL_BATCHES: usize = 3;

/// A tch model serving one output row per item: ResNet-50's class logits or BERT's 2
/// label logits, as f32.
#[derive(Debug)]
pub struct TorchBackend {
    name: &'static str,
    model: InferenceModel,
    input_shape: Vec<i64>,
    dtype: Dtype,
    /// Token models only: ids must lie in `0..vocab_size`.
    vocab_size: Option<i64>,
    n_outputs: usize,
    max_batch_size: usize,
    /// CUDA models only: page-locked host memory for a full batch, reused by every batch.
    /// Copying into it once and DMA-ing from it replaces a fresh pageable tensor per batch,
    /// whose page faults and staged copy made up half of ResNet-50's backend time on the
    /// H200 (19 MB per batch of 32 images).
    staging: Option<tch::Tensor>,
}

impl TorchBackend {
    /// Builds `args.model` in evaluation mode on `args.device` (`cuda`, `cuda:N`, `cpu`)
    /// with `--precision`, `--tiny` and `--seq-len`. Call it on the thread that will run
    /// the batches (the batcher's): a CUDA model keeps its context there.
    pub fn new(args: &ServeArgs) -> Result<Self, BackendError> {
        let name = args.model.name();
        let model_kind = match args.model {
            ServeModel::Resnet50 => ModelKind::Resnet50,
            ServeModel::BertBase => ModelKind::BertBase,
            ServeModel::TestDelay => {
                return Err(BackendError::msg(format!(
                    "building {name}: it is not a torch model"
                )))
            }
        };
        let device = parse_device(&args.device)
            .map_err(|err| BackendError::with_source(format!("building {name}"), err))?;
        let spec = TorchJobSpec {
            batch_size: Some(args.max_batch_size.max(1)),
            seq_len: args.seq_len,
            precision: match args.precision {
                ServePrecision::Fp32 => Precision::Fp32,
                ServePrecision::Bf16 => Precision::Bf16,
            },
            device,
            tiny: args.tiny,
            ..TorchJobSpec::new(model_kind)
        };
        let model = InferenceModel::new(&spec).map_err(|err| {
            BackendError::with_source(format!("building {name} on {}", device_name(device)), err)
        })?;
        let dtype = match model.input_kind() {
            Kind::Int64 => Dtype::I64,
            _ => Dtype::F32,
        };
        let max_batch_size = args.max_batch_size.max(1);
        let staging = if device.is_cuda() {
            let shape: Vec<i64> = std::iter::once(max_batch_size as i64)
                .chain(model.item_shape())
                .collect();
            let staging = tch::Tensor::f_empty(shape.as_slice(), (model.input_kind(), Device::Cpu))
                .and_then(|empty| empty.f_pin_memory(device))
                .map_err(|err| {
                    BackendError::with_source(
                        format!("allocating page-locked memory for a {shape:?} batch"),
                        err,
                    )
                })?;
            Some(staging)
        } else {
            None
        };
        Ok(Self {
            name,
            input_shape: model.item_shape(),
            dtype,
            vocab_size: model.vocab_size(),
            n_outputs: usize::try_from(model.n_outputs()).unwrap_or(0),
            max_batch_size,
            model,
            staging,
        })
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.model.settings().device
    }

    fn to_input_tensor(&self, batch: &Batch) -> Result<tch::Tensor, BackendError> {
        let shape = batch.shape();
        let wrap = |err| BackendError::with_source(format!("making the {shape:?} input"), err);
        match &batch.data {
            TensorData::F32(values) if self.dtype == Dtype::F32 => {
                self.host_tensor(values, &shape, Kind::Float).map_err(wrap)
            }
            TensorData::I64(values) if self.dtype == Dtype::I64 => {
                // Checked here too, not only by the handler: an out-of-range id on a GPU is
                // a device-side assert that ruins the CUDA context for every later batch.
                if let Some(limit) = self.vocab_size {
                    if let Some(bad) = values.iter().find(|id| !(0..limit).contains(*id)) {
                        return Err(BackendError::msg(format!(
                            "running {}: token id {bad} is outside 0..{limit}",
                            self.name
                        )));
                    }
                }
                self.host_tensor(values, &shape, Kind::Int64).map_err(wrap)
            }
            other => Err(BackendError::msg(format!(
                "running {}: got {} elements, expected {}",
                self.name,
                other.dtype(),
                self.dtype
            ))),
        }
    }

    /// The batch's elements as a `shape` tensor on the host: the first rows of the
    /// page-locked staging tensor for a CUDA model, a fresh tensor for a CPU one.
    fn host_tensor<T: tch::kind::Element>(
        &self,
        values: &[T],
        shape: &[i64],
        kind: Kind,
    ) -> Result<tch::Tensor, tch::TchError> {
        match &self.staging {
            Some(staging) => Self::stage(staging, values, shape, kind),
            None => tch::Tensor::f_from_slice(values).and_then(|t| t.f_view(shape)),
        }
    }

    /// Copies a batch's elements (`shape`, `kind` matching `T`) into the first rows of the
    /// page-locked `staging` tensor and returns those rows, ready for a fast copy to the GPU.
    fn stage<T: tch::kind::Element>(
        staging: &tch::Tensor,
        values: &[T],
        shape: &[i64],
        kind: Kind,
    ) -> Result<tch::Tensor, tch::TchError> {
        if shape.iter().product::<i64>() != values.len() as i64 {
            return Err(tch::TchError::Shape(format!(
                "{} elements do not make a {shape:?} batch",
                values.len()
            )));
        }
        // SAFETY: `values` holds exactly `shape`'s number of elements of `kind` (checked
        // above; `T` is `kind`'s element type at both call sites), stays borrowed for this
        // whole function, and the view is only read by the synchronous CPU copy below and
        // dropped before returning.
        let view = unsafe {
            tch::Tensor::f_from_blob(values.as_ptr().cast(), shape, &[], kind, Device::Cpu)
        }?;
        let mut rows = staging.f_narrow(0, 0, shape[0])?;
        rows.f_copy_(&view)?;
        Ok(rows)
    }
}

impl InferenceBackend for TorchBackend {
    fn name(&self) -> &str {
        self.name
    }

    fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn index_limit(&self) -> Option<i64> {
        self.vocab_size
    }

    fn warm_up(&mut self) -> Result<(), BackendError> {
        let sizes = (1..self.max_batch_size).chain(std::iter::repeat_n(
            self.max_batch_size,
            WARM_UP_FULL_BATCHES,
        ));
        for n_items in sizes {
            let context = || format!("warming up {} (batch of {n_items})", self.name);
            let inputs = self
                .model
                .random_inputs(n_items)
                .map_err(|err| BackendError::with_source(context(), err))?;
            // The logits are dropped: warm-up is for the allocator and cuDNN, not answers.
            let _logits = self
                .model
                .forward(&inputs)
                .map_err(|err| BackendError::with_source(context(), err))?;
        }
        Ok(())
    }

    fn infer(&mut self, batch: Batch) -> Result<Vec<Tensor>, BackendError> {
        let inputs = self.to_input_tensor(&batch)?;
        let context = || format!("running {} on a batch of {}", self.name, batch.n_items);
        let logits = self
            .model
            .forward(&inputs)
            .map_err(|err| BackendError::with_source(context(), err))?;
        let values = logits
            .f_flatten(0, -1)
            .and_then(|flat| Vec::<f32>::try_from(&flat))
            .map_err(|err| BackendError::with_source(context(), err))?;
        if values.len() != batch.n_items * self.n_outputs {
            return Err(BackendError::msg(format!(
                "{}: got {} logits, expected {} per item",
                context(),
                values.len(),
                self.n_outputs
            )));
        }
        Ok(values
            .chunks(self.n_outputs.max(1))
            .map(|row| Tensor::vector_f32(row.to_vec()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn tiny_cpu(flags: &[&str]) -> TorchBackend {
        let args = Cli::parse_from(["serve", "--device", "cpu", "--tiny"].iter().chain(flags));
        TorchBackend::new(&args.serve).unwrap()
    }

    #[test]
    fn staging_copies_a_partial_batch_into_the_first_rows() {
        // On a GPU the staging tensor is page-locked; the copy is the same on the CPU.
        let staging = tch::Tensor::zeros([4, 2], (Kind::Int64, Device::Cpu));
        let rows =
            TorchBackend::stage(&staging, &[1_i64, 2, 3, 4, 5, 6], &[3, 2], Kind::Int64).unwrap();
        assert_eq!(rows.size(), [3, 2]);
        assert_eq!(
            Vec::<i64>::try_from(rows.flatten(0, -1)).unwrap(),
            [1, 2, 3, 4, 5, 6]
        );
        // The rows are the staging memory itself, and the last row is untouched.
        assert_eq!(
            Vec::<i64>::try_from(staging.flatten(0, -1)).unwrap(),
            [1, 2, 3, 4, 5, 6, 0, 0]
        );
        let floats = tch::Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let rows =
            TorchBackend::stage(&floats, &[0.5_f32, 1.5, 2.5], &[1, 3], Kind::Float).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(rows.flatten(0, -1)).unwrap(),
            [0.5, 1.5, 2.5]
        );
        let err = TorchBackend::stage(&staging, &[1_i64, 2, 3], &[2, 2], Kind::Int64).unwrap_err();
        assert!(
            err.to_string()
                .contains("3 elements do not make a [2, 2] batch"),
            "{err}"
        );
    }

    #[test]
    fn bert_refuses_out_of_vocabulary_ids_itself_and_keeps_serving() {
        let mut backend = tiny_cpu(&["--model", "bert-base", "--seq-len", "4"]);
        assert_eq!(backend.input_shape(), [4]);
        assert_eq!(backend.index_limit(), Some(128));
        let batch = |data: Vec<i64>| Batch {
            n_items: 2,
            item_shape: vec![4],
            data: TensorData::I64(data),
        };
        let err = backend
            .infer(batch(vec![1, 2, 3, 4, 5, 6, 7, 128]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "running bert-base: token id 128 is outside 0..128"
        );
        let outputs = backend
            .infer(batch(vec![1, 2, 3, 4, 5, 6, 7, 127]))
            .unwrap();
        assert_eq!(outputs.len(), 2);
        assert!(outputs.iter().all(|output| output.shape == [2]));
    }

    #[test]
    fn resnet_warms_up_and_answers_one_logit_row_per_item() {
        let mut backend = tiny_cpu(&["--model", "resnet50", "--max-batch-size", "3"]);
        assert_eq!(backend.device(), Device::Cpu);
        assert_eq!(backend.input_spec().shape, [3, 32, 32]);
        assert_eq!(backend.dtype(), Dtype::F32);
        assert_eq!(backend.index_limit(), None);
        backend.warm_up().unwrap();
        let outputs = backend
            .infer(Batch {
                n_items: 3,
                item_shape: vec![3, 32, 32],
                data: TensorData::F32(vec![0.25; 3 * 3 * 32 * 32]),
            })
            .unwrap();
        assert_eq!(outputs.len(), 3);
        // Equal images in one batch get equal logits (evaluation mode, no batch statistics).
        assert_eq!(outputs[0], outputs[2]);
        assert_eq!(outputs[0].shape, [10]);
    }

    #[test]
    fn a_seq_len_beyond_the_positions_fails_to_build() {
        let args = Cli::parse_from([
            "serve",
            "--device",
            "cpu",
            "--tiny",
            "--model",
            "bert-base",
            "--seq-len",
            "65",
        ]);
        let err = TorchBackend::new(&args.serve).unwrap_err();
        assert_eq!(
            err.chain_message(),
            "building bert-base on cpu: configure bert-base: seq_len 65 is outside 1..=64 tokens"
        );
    }
}
