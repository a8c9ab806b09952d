//! `resnet50` and `bert-base` behind the server's backend seam (`torch` feature).
//!
//! Owns the translation between the server's batches and tch tensors, and the warm-up
//! that makes the first real batch as fast as the rest. The models themselves are
//! [`crate::models`]' ([`InferenceModel`]); this file must not define layers, and must not
//! know about HTTP or queues. Everything here runs on the batcher thread, which therefore
//! owns the CUDA context.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use tch::{Device, Kind};

use super::backend::{
    AssembledBatch, AssembledInput, Batch, BatchAssembler, InferenceBackend, Submitted,
};
use super::config::{cuda_graph_batch_sizes, ServeArgs, ServeModel, ServePrecision};
use super::error::BackendError;
use super::tensor::{Dtype, Tensor, TensorData};
use crate::models::{
    device_name, normalize_pixel, parse_device, shim, InferenceModel, ModelKind, PendingLogits,
    Precision, TorchJobSpec,
};

/// Warm-up batches of `max_batch_size` run after one batch of every smaller size: the
/// caching allocator settles and nothing is left for cuDNN to time on a real request.
const WARM_UP_FULL_BATCHES: usize = 3;

/// Staging buffers per element type: one is filled by the assembler while the model thread
/// has up to two batches in flight (one running on the device, the next queued behind it),
/// each holding its buffer until the device has read it.
const BUFFERS_PER_KIND: usize = 3;

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
    /// `--cuda-graphs`: capture the forward pass at warm-up (on a CUDA device only).
    cuda_graphs: bool,
    /// The host half, built with the backend (so a failed page-locked allocation fails the
    /// load) and handed to the assembler thread once.
    assembler: Option<TorchAssembler>,
}

impl TorchBackend {
    /// Builds `args.model` in evaluation mode on `args.device` (`cuda`, `cuda:N`, `cpu`)
    /// with `--precision`, `--tiny` and `--seq-len`, and its staging buffers. Call it on the
    /// thread that will run the batches (the batcher's model thread): a CUDA model keeps
    /// its context there.
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
        if args.cuda_graphs && !device.is_cuda() {
            return Err(BackendError::msg(format!(
                "building {name}: --cuda-graphs needs a CUDA device, and --device is {}; \
                 drop --cuda-graphs or use --device cuda",
                args.device
            )));
        }
        let max_batch_size = args.max_batch_size.max(1);
        let spec = TorchJobSpec {
            batch_size: Some(max_batch_size),
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
        let kinds: &[Kind] = match dtype {
            Dtype::I64 => &[Kind::Int64],
            _ => &[Kind::Float, Kind::Uint8],
        };
        let batch_shape: Vec<i64> = std::iter::once(max_batch_size as i64)
            .chain(model.item_shape())
            .collect();
        let pools = kinds
            .iter()
            .map(|&kind| BufferPool::new(kind, &batch_shape, device))
            .collect::<Result<_, _>>()?;
        let assembler = TorchAssembler {
            name,
            item_shape: model.item_shape(),
            max_batch_size,
            vocab_size: model.vocab_size(),
            pools,
        };
        Ok(Self {
            name,
            input_shape: model.item_shape(),
            dtype,
            vocab_size: model.vocab_size(),
            n_outputs: usize::try_from(model.n_outputs()).unwrap_or(0),
            max_batch_size,
            cuda_graphs: args.cuda_graphs,
            model,
            assembler: Some(assembler),
        })
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.model.settings().device
    }

    /// `--cuda-graphs`: one graph per size of [`cuda_graph_batch_sizes`] for each input
    /// type the server accepts (uint8 and float32 images, or token ids).
    fn capture_graphs(&mut self) -> Result<(), BackendError> {
        let sizes = cuda_graph_batch_sizes(self.max_batch_size);
        let kinds: &[Kind] = match self.dtype {
            Dtype::I64 => &[Kind::Int64],
            _ => &[Kind::Uint8, Kind::Float],
        };
        for &kind in kinds {
            self.model.capture_graphs(kind, &sizes).map_err(|err| {
                BackendError::with_source(
                    format!(
                        "capturing {} as CUDA graphs ({kind:?} inputs, batch sizes {sizes:?})",
                        self.name
                    ),
                    err,
                )
            })?;
        }
        Ok(())
    }

    /// What an error of running a batch of `n_items` says it was doing.
    fn batch_context(&self, n_items: usize) -> String {
        format!("running {} on a batch of {n_items}", self.name)
    }

    /// Splits a batch's logits (on the host) into one row per item.
    fn rows(&self, logits: &tch::Tensor, n_items: usize) -> Result<Vec<Tensor>, BackendError> {
        let context = || self.batch_context(n_items);
        let values = logits
            .f_flatten(0, -1)
            .and_then(|flat| Vec::<f32>::try_from(&flat))
            .map_err(|err| BackendError::with_source(context(), err))?;
        if values.len() != n_items * self.n_outputs {
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

    /// Waits for a batch in flight and splits its logits into rows.
    fn finish_running(&self, running: RunningBatch) -> Result<Vec<Tensor>, BackendError> {
        let RunningBatch {
            logits,
            n_items,
            _inputs,
        } = running;
        let logits = logits
            .wait()
            .map_err(|err| BackendError::with_source(self.batch_context(n_items), err))?;
        self.rows(&logits, n_items)
    }

    /// A plain batch as a host tensor of the model's input type.
    fn host_tensor(&self, batch: &Batch) -> Result<tch::Tensor, BackendError> {
        let shape = batch.shape();
        let wrap = |err| BackendError::with_source(format!("making the {shape:?} input"), err);
        match &batch.data {
            TensorData::F32(values) if self.dtype == Dtype::F32 => {
                tch::Tensor::f_from_slice(values).and_then(|t| t.f_view(shape.as_slice()))
            }
            TensorData::U8(values) if self.takes_u8_images() => {
                tch::Tensor::f_from_slice(values).and_then(|t| t.f_view(shape.as_slice()))
            }
            TensorData::I64(values) if self.dtype == Dtype::I64 => {
                check_ids(self.name, values, self.vocab_size)?;
                tch::Tensor::f_from_slice(values).and_then(|t| t.f_view(shape.as_slice()))
            }
            other => {
                return Err(BackendError::msg(format!(
                    "running {}: got {} elements, expected {}",
                    self.name,
                    other.dtype(),
                    self.dtype
                )))
            }
        }
        .map_err(wrap)
    }
}

/// A batch's inputs, kept alive until the device has read them.
enum BatchInputs {
    Host(tch::Tensor),
    Staged(Box<StagedInputs>),
}

impl BatchInputs {
    fn tensor(&self) -> &tch::Tensor {
        match self {
            Self::Host(tensor) => tensor,
            Self::Staged(staged) => &staged.rows,
        }
    }
}

/// A batch queued on the device: what [`TorchBackend::finish`] waits for. Fields drop in
/// order: the inputs (and a staging buffer's lease) only after the logits were waited for.
struct RunningBatch {
    logits: PendingLogits,
    n_items: usize,
    _inputs: BatchInputs,
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

    fn takes_u8_images(&self) -> bool {
        self.dtype == Dtype::F32
    }

    fn warm_up(&mut self) -> Result<(), BackendError> {
        // With --cuda-graphs every batch runs as a captured size, and capturing runs each of
        // those eagerly first: the other sizes would only be timed for cuDNN in vain.
        let smaller = if self.cuda_graphs {
            0..0
        } else {
            1..self.max_batch_size
        };
        let sizes = smaller.chain(std::iter::repeat_n(
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
        if self.takes_u8_images() {
            // The uint8 path's conversion and normalization kernels, once at full size.
            let context = || format!("warming up {} (uint8 images)", self.name);
            let pixels = self
                .model
                .random_inputs_of(Kind::Uint8, self.max_batch_size)
                .map_err(|err| BackendError::with_source(context(), err))?;
            let _logits = self
                .model
                .forward(&pixels)
                .map_err(|err| BackendError::with_source(context(), err))?;
        }
        if self.cuda_graphs {
            self.capture_graphs()?;
        }
        Ok(())
    }

    fn assembler(&mut self) -> Result<Box<dyn BatchAssembler>, BackendError> {
        self.assembler
            .take()
            .map(|assembler| Box::new(assembler) as Box<dyn BatchAssembler>)
            .ok_or_else(|| {
                BackendError::msg(format!(
                    "starting the assembler of {}: it was handed out already",
                    self.name
                ))
            })
    }

    fn submit(&mut self, batch: AssembledBatch) -> Result<Submitted, BackendError> {
        let n_items = batch.n_items;
        let inputs = match batch.input {
            AssembledInput::Host(host) => BatchInputs::Host(self.host_tensor(&host)?),
            AssembledInput::Staged(staged) => {
                BatchInputs::Staged(staged.downcast::<StagedInputs>().map_err(|_| {
                    BackendError::msg(format!(
                        "running {}: got a batch staged by another assembler",
                        self.name
                    ))
                })?)
            }
        };
        let logits = self
            .model
            .submit(inputs.tensor())
            .map_err(|err| BackendError::with_source(self.batch_context(n_items), err))?;
        let running = RunningBatch {
            logits,
            n_items,
            _inputs: inputs,
        };
        if self.device().is_cuda() {
            Ok(Submitted::Running(Box::new(running)))
        } else {
            // On the CPU the batch has run already: holding it back for the next one would
            // only delay its answer.
            self.finish_running(running).map(Submitted::Done)
        }
    }

    fn finish(
        &mut self,
        running: Box<dyn std::any::Any + Send>,
    ) -> Result<Vec<Tensor>, BackendError> {
        let running = running.downcast::<RunningBatch>().map_err(|_| {
            BackendError::msg(format!(
                "finishing a batch on {}: it was submitted to another backend",
                self.name
            ))
        })?;
        self.finish_running(*running)
    }

    fn run(&mut self, batch: AssembledBatch) -> Result<Vec<Tensor>, BackendError> {
        match self.submit(batch)? {
            Submitted::Done(outputs) => Ok(outputs),
            Submitted::Running(running) => self.finish(running),
        }
    }

    fn infer(&mut self, batch: Batch) -> Result<Vec<Tensor>, BackendError> {
        self.run(AssembledBatch {
            n_items: batch.n_items,
            input: AssembledInput::Host(batch),
        })
    }
}

/// Refuses an id outside `0..limit`. Checked here too, not only by the handler: an
/// out-of-range id on a GPU is a device-side assert that ruins the CUDA context for every
/// later batch.
fn check_ids(name: &str, values: &[i64], limit: Option<i64>) -> Result<(), BackendError> {
    if let Some(limit) = limit {
        if let Some(bad) = values.iter().find(|id| !(0..limit).contains(*id)) {
            return Err(BackendError::msg(format!(
                "running {name}: token id {bad} is outside 0..{limit}"
            )));
        }
    }
    Ok(())
}

/// Host buffers for whole batches of one element type. A buffer is leased for one batch
/// and comes back when the lease is dropped, after the model thread has run the batch.
/// On a GPU the buffers are page-locked, so the copy to the device is one DMA transfer
/// without page faults or a staged copy (a fresh pageable tensor per batch made up half of
/// ResNet-50's backend time on the H200: 19 MB per batch of 32 f32 images).
#[derive(Debug)]
struct BufferPool {
    kind: Kind,
    free: Receiver<tch::Tensor>,
    give_back: SyncSender<tch::Tensor>,
}

impl BufferPool {
    fn new(kind: Kind, batch_shape: &[i64], device: Device) -> Result<Self, BackendError> {
        let (give_back, free) = sync_channel(BUFFERS_PER_KIND);
        for _ in 0..BUFFERS_PER_KIND {
            let context =
                || format!("allocating staging memory for a {batch_shape:?} {kind:?} batch");
            let empty = tch::Tensor::f_empty(batch_shape, (kind, Device::Cpu))
                .map_err(|err| BackendError::with_source(context(), err))?;
            let buffer = if device.is_cuda() {
                shim::pin_memory(&empty).map_err(|err| BackendError::with_source(context(), err))?
            } else {
                empty
            };
            // The channel has room for every buffer and its receiver is right here.
            let _ = give_back.try_send(buffer);
        }
        Ok(Self {
            kind,
            free,
            give_back,
        })
    }

    /// Waits until a buffer is free and leases it.
    fn lease(&self) -> Result<Lease, BackendError> {
        // The pool holds a sender itself, so `recv` waits for a lease to end and never
        // sees a closed channel.
        let buffer = self.free.recv().map_err(|_| {
            BackendError::msg(format!(
                "assembling a batch: the {:?} staging buffers are gone",
                self.kind
            ))
        })?;
        Ok(Lease {
            buffer: Some(buffer),
            give_back: self.give_back.clone(),
        })
    }
}

/// One staging buffer, held for one batch; given back to its pool on drop.
#[derive(Debug)]
struct Lease {
    buffer: Option<tch::Tensor>,
    give_back: SyncSender<tch::Tensor>,
}

impl Lease {
    /// The buffer's elements as a slice, `T` being its element type.
    fn elements_mut<T: tch::kind::Element>(&mut self) -> Result<&mut [T], BackendError> {
        let buffer = self
            .buffer
            .as_mut()
            .ok_or_else(|| BackendError::msg("assembling a batch: the lease holds no buffer"))?;
        if buffer.kind() != T::KIND || !buffer.is_contiguous() || buffer.device() != Device::Cpu {
            return Err(BackendError::msg(format!(
                "assembling a batch: the staging buffer is not a contiguous host {:?} tensor",
                T::KIND
            )));
        }
        let len = buffer.numel();
        // SAFETY: the buffer is a contiguous host tensor of `len` elements of `T` (checked
        // above) that only this lease refers to (the pool hands each buffer to one lease at
        // a time, and the views of a previous batch were dropped before its lease gave the
        // buffer back), and the slice borrows the lease mutably for its whole life.
        Ok(unsafe { std::slice::from_raw_parts_mut(buffer.data_ptr().cast::<T>(), len) })
    }

    /// The first `n_items` rows of the buffer.
    fn rows(&self, n_items: usize) -> Result<tch::Tensor, BackendError> {
        self.buffer
            .as_ref()
            .ok_or_else(|| BackendError::msg("assembling a batch: the lease holds no buffer"))?
            .f_narrow(0, 0, n_items as i64)
            .map_err(|err| BackendError::with_source("assembling a batch", err))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            // The pool's channel has room for all its buffers; if the pool is gone the
            // buffer is simply freed.
            let _ = self.give_back.try_send(buffer);
        }
    }
}

/// A batch in staging memory: what [`TorchAssembler`] hands to [`TorchBackend::run`].
/// Fields drop in order: the rows view goes before the lease gives the buffer back.
struct StagedInputs {
    rows: tch::Tensor,
    _lease: Lease,
}

/// The torch models' host half: copies each request's elements straight into a leased
/// staging buffer. Images that are all `u8` go to the `u8` buffer (the model normalizes
/// them on its device); a batch mixing `u8` and `f32` images goes to the `f32` buffer with
/// the `u8` ones normalized on the host, as the device would.
#[derive(Debug)]
struct TorchAssembler {
    name: &'static str,
    item_shape: Vec<i64>,
    max_batch_size: usize,
    vocab_size: Option<i64>,
    pools: Vec<BufferPool>,
}

impl TorchAssembler {
    fn pool(&self, kind: Kind) -> Result<&BufferPool, BackendError> {
        self.pools
            .iter()
            .find(|pool| pool.kind == kind)
            .ok_or_else(|| {
                BackendError::msg(format!(
                    "assembling a batch for {}: it takes no {kind:?} inputs",
                    self.name
                ))
            })
    }
}

impl BatchAssembler for TorchAssembler {
    fn assemble(&mut self, items: &[&Tensor]) -> Result<AssembledBatch, BackendError> {
        let n_items = items.len();
        if n_items == 0 || n_items > self.max_batch_size {
            return Err(BackendError::msg(format!(
                "assembling a batch for {}: {n_items} items, expected 1 to {}",
                self.name, self.max_batch_size
            )));
        }
        let item_len = super::tensor::n_elements(&self.item_shape).unwrap_or(0);
        if let Some(item) = items.iter().find(|item| item.data.len() != item_len) {
            return Err(BackendError::msg(format!(
                "assembling a batch for {}: an item has {} elements, expected {item_len}",
                self.name,
                item.data.len()
            )));
        }
        let all_u8 = items.iter().all(|item| item.dtype == Dtype::U8);
        let all_i64 = items.iter().all(|item| item.dtype == Dtype::I64);
        let kind = match (all_i64, all_u8) {
            (true, _) => Kind::Int64,
            (_, true) => Kind::Uint8,
            _ => Kind::Float,
        };
        let mut lease = self.pool(kind)?.lease()?;
        // Elements per channel plane of an image item, for host-side normalization.
        let plane = item_len / usize::try_from(self.item_shape[0].max(1)).unwrap_or(1);
        let mismatch = |item: &Tensor| {
            BackendError::msg(format!(
                "assembling a batch for {}: cannot put a {} item into a {kind:?} batch",
                self.name, item.dtype
            ))
        };
        match kind {
            Kind::Int64 => {
                let rows = lease.elements_mut::<i64>()?;
                for (item, slot) in items.iter().zip(rows.chunks_exact_mut(item_len.max(1))) {
                    let TensorData::I64(ids) = &item.data else {
                        return Err(mismatch(item));
                    };
                    check_ids(self.name, ids, self.vocab_size)?;
                    slot.copy_from_slice(ids);
                }
            }
            Kind::Uint8 => {
                let rows = lease.elements_mut::<u8>()?;
                for (item, slot) in items.iter().zip(rows.chunks_exact_mut(item_len.max(1))) {
                    let TensorData::U8(pixels) = &item.data else {
                        return Err(mismatch(item));
                    };
                    slot.copy_from_slice(pixels);
                }
            }
            _ => {
                let rows = lease.elements_mut::<f32>()?;
                for (item, slot) in items.iter().zip(rows.chunks_exact_mut(item_len.max(1))) {
                    match &item.data {
                        TensorData::F32(values) => slot.copy_from_slice(values),
                        TensorData::U8(pixels) => {
                            for (idx, (out, &pixel)) in slot.iter_mut().zip(pixels).enumerate() {
                                *out = normalize_pixel(pixel, idx / plane.max(1));
                            }
                        }
                        TensorData::I64(_) => return Err(mismatch(item)),
                    }
                }
            }
        }
        let rows = lease.rows(n_items)?;
        Ok(AssembledBatch {
            n_items,
            input: AssembledInput::Staged(Box::new(StagedInputs {
                rows,
                _lease: lease,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    impl Tensor {
        fn data_f32(&self) -> &[f32] {
            match &self.data {
                TensorData::F32(values) => values,
                _ => panic!("not f32"),
            }
        }
        fn data_u8(&self) -> &[u8] {
            match &self.data {
                TensorData::U8(values) => values,
                _ => panic!("not u8"),
            }
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn tiny_cpu(flags: &[&str]) -> TorchBackend {
        let args = Cli::parse_from(["serve", "--device", "cpu", "--tiny"].iter().chain(flags));
        TorchBackend::new(&args.serve).unwrap()
    }

    fn staged_rows(batch: &AssembledBatch) -> &tch::Tensor {
        let AssembledInput::Staged(staged) = &batch.input else {
            panic!("not staged");
        };
        &staged.downcast_ref::<StagedInputs>().unwrap().rows
    }

    fn image(shape: &[i64], data: TensorData) -> Tensor {
        Tensor::new(shape.to_vec(), data).unwrap()
    }

    #[test]
    fn the_assembler_copies_each_item_into_its_row_of_a_staging_buffer() {
        let mut backend = tiny_cpu(&["--model", "resnet50", "--max-batch-size", "3"]);
        assert!(backend.takes_u8_images());
        assert!(backend.input_spec().u8_images);
        let mut assembler = backend.assembler().unwrap();
        let item_len = 3 * 32 * 32;
        let floats = |base: f32| {
            image(
                &[3, 32, 32],
                TensorData::F32((0..item_len).map(|i| base + i as f32).collect()),
            )
        };
        let pixels = |base: u8| {
            image(
                &[3, 32, 32],
                TensorData::U8((0..item_len).map(|i| base.wrapping_add(i as u8)).collect()),
            )
        };
        // Two f32 items: a partial batch in the first rows of the f32 buffer.
        let (a, b) = (floats(0.0), floats(1e5));
        let batch = assembler.assemble(&[&a, &b]).unwrap();
        assert_eq!(batch.n_items, 2);
        let rows = staged_rows(&batch);
        assert_eq!(
            (rows.size(), rows.kind()),
            (vec![2, 3, 32, 32], Kind::Float)
        );
        let values = Vec::<f32>::try_from(rows.flatten(0, -1)).unwrap();
        assert_eq!(values[..item_len], *a.data_f32());
        assert_eq!(values[item_len..], *b.data_f32());
        // u8 items stay u8, for the device to normalize; a second batch takes the other
        // buffer while the first is still leased.
        let (c, d, e) = (pixels(0), pixels(7), pixels(200));
        let second = assembler.assemble(&[&c, &d, &e]).unwrap();
        let rows = staged_rows(&second);
        assert_eq!(rows.kind(), Kind::Uint8);
        let values = Vec::<u8>::try_from(rows.flatten(0, -1)).unwrap();
        assert_eq!(values[2 * item_len..], *e.data_u8());
        // A mixed batch goes to the f32 buffer with the u8 items normalized on the host.
        let mixed = assembler.assemble(&[&a, &c]).unwrap();
        let values = Vec::<f32>::try_from(staged_rows(&mixed).flatten(0, -1)).unwrap();
        assert_eq!(values[..item_len], *a.data_f32());
        let plane = 32 * 32;
        for idx in [0, plane - 1, plane, 2 * plane + 5, item_len - 1] {
            assert_eq!(
                values[item_len + idx],
                normalize_pixel(c.data_u8()[idx], idx / plane),
                "element {idx}"
            );
        }
        let err = assembler.assemble(&[&a, &b, &c, &d]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "assembling a batch for resnet50: 4 items, expected 1 to 3"
        );
        // A third f32 batch takes the last f32 buffer while `batch` and `mixed` hold the
        // other two (one batch being filled while two are in flight); once all three are
        // leased, dropping one frees it for the next.
        let third = assembler.assemble(&[&b]).unwrap();
        assert_eq!(staged_rows(&third).size(), [1, 3, 32, 32]);
        drop(batch);
        assert!(assembler.assemble(&[&b]).is_ok());
        drop((mixed, third));
        assert_eq!(
            backend.assembler().err().unwrap().to_string(),
            "starting the assembler of resnet50: it was handed out already"
        );
    }

    #[test]
    fn finishing_a_batch_of_another_backend_is_an_error() {
        let mut backend = tiny_cpu(&["--model", "bert-base"]);
        let err = backend.finish(Box::new(7_u8)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "finishing a batch on bert-base: it was submitted to another backend"
        );
    }

    #[test]
    fn staged_u8_and_f32_batches_answer_the_same_logits() {
        let mut backend = tiny_cpu(&["--model", "resnet50", "--max-batch-size", "4"]);
        let mut assembler = backend.assembler().unwrap();
        let item_len = 3 * 32 * 32;
        let pixels: Vec<Tensor> = (0..3_u32)
            .map(|item| {
                image(
                    &[3, 32, 32],
                    TensorData::U8(
                        (0..item_len as u32)
                            .map(|i| ((i * 31 + item * 101) % 256) as u8)
                            .collect(),
                    ),
                )
            })
            .collect();
        let normalized: Vec<Tensor> = pixels
            .iter()
            .map(|item| {
                let values = item
                    .data_u8()
                    .iter()
                    .enumerate()
                    .map(|(idx, &pixel)| normalize_pixel(pixel, idx / (32 * 32)))
                    .collect();
                image(&[3, 32, 32], TensorData::F32(values))
            })
            .collect();
        let run = |backend: &mut TorchBackend,
                   items: Vec<&Tensor>,
                   assembler: &mut Box<dyn BatchAssembler>| {
            backend.run(assembler.assemble(&items).unwrap()).unwrap()
        };
        let from_u8 = run(&mut backend, pixels.iter().collect(), &mut assembler);
        let from_f32 = run(&mut backend, normalized.iter().collect(), &mut assembler);
        let mixed = run(
            &mut backend,
            vec![&pixels[0], &normalized[1], &pixels[2]],
            &mut assembler,
        );
        assert_eq!(from_u8.len(), 3);
        for outputs in [&from_f32, &mixed] {
            for (a, b) in from_u8.iter().zip(outputs.iter()) {
                let (TensorData::F32(a), TensorData::F32(b)) = (&a.data, &b.data) else {
                    panic!("logits are f32");
                };
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
                }
            }
        }
        // The plain path (a concatenated u8 batch) answers the same too.
        let mut data = TensorData::with_capacity(Dtype::U8, 3 * item_len);
        for item in &pixels {
            data.extend_from(&item.data);
        }
        let plain = backend
            .infer(Batch {
                n_items: 3,
                item_shape: vec![3, 32, 32],
                data,
            })
            .unwrap();
        assert_eq!(plain, from_u8);
    }

    #[test]
    fn bert_stages_token_ids_and_refuses_out_of_vocabulary_ones_while_assembling() {
        let mut backend = tiny_cpu(&["--model", "bert-base", "--seq-len", "4"]);
        assert!(!backend.takes_u8_images());
        let mut assembler = backend.assembler().unwrap();
        let ids = |values: Vec<i64>| image(&[4], TensorData::I64(values));
        let (a, b) = (ids(vec![1, 2, 3, 4]), ids(vec![5, 6, 7, 127]));
        let batch = assembler.assemble(&[&a, &b]).unwrap();
        assert_eq!(
            Vec::<i64>::try_from(staged_rows(&batch).flatten(0, -1)).unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 127]
        );
        let outputs = backend.run(batch).unwrap();
        assert_eq!(outputs.len(), 2);
        let bad = ids(vec![1, 2, 3, 128]);
        assert_eq!(
            assembler.assemble(&[&a, &bad]).err().unwrap().to_string(),
            "running bert-base: token id 128 is outside 0..128"
        );
        let pixels = image(&[4], TensorData::U8(vec![1, 2, 3, 4]));
        assert_eq!(
            assembler.assemble(&[&pixels]).err().unwrap().to_string(),
            "assembling a batch for bert-base: it takes no Uint8 inputs"
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
