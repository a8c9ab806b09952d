//! The seam between the server and a model: [`InferenceBackend`], the [`Batch`] it runs,
//! and the [`BatchAssembler`] that gathers a batch's inputs while the previous batch runs.
//!
//! A backend is created, warmed up and run on the batcher's model thread, never on the
//! async runtime, so it may block (GPU work, sleeps) and may keep thread-bound state such as
//! a CUDA context. Its assembler is handed once to the batcher's assembler thread, which
//! gathers batch k+1 (host work: copying each request's elements into one buffer) while
//! the model thread runs batch k. With `--max-batches-in-flight 2`, a backend whose device
//! runs asynchronously (the torch models on a GPU) also gets batch k+1 submitted
//! ([`InferenceBackend::submit`]) before batch k is finished, so the device does not wait
//! for the host between batches. Neither sees
//! anything but whole batches; they must not know about HTTP or queues.

use std::any::Any;

use super::error::BackendError;
use super::tensor::{Dtype, InputSpec, Tensor, TensorData};

/// A batch of items stacked along a new leading dimension: shape `[n_items, ..item_shape]`,
/// elements contiguous and row-major, ready for `Tensor::from_slice(..).view(..)` in tch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of items (requests) in the batch.
    pub n_items: usize,
    /// Shape of one item, the backend's `input_shape()`.
    pub item_shape: Vec<i64>,
    /// All items' elements, item after item.
    pub data: TensorData,
}

impl Batch {
    /// Shape of the whole batch, `[n_items, ..item_shape]`.
    pub fn shape(&self) -> Vec<i64> {
        std::iter::once(self.n_items as i64)
            .chain(self.item_shape.iter().copied())
            .collect()
    }

    /// Elements of one item.
    pub fn item_len(&self) -> usize {
        self.data.len().checked_div(self.n_items).unwrap_or(0)
    }
}

/// A batch as an assembler made it, for [`InferenceBackend::run`].
pub struct AssembledBatch {
    /// Number of items (requests) in the batch.
    pub n_items: usize,
    /// The inputs in the form the backend runs.
    pub input: AssembledInput,
}

/// What an assembler produced.
pub enum AssembledInput {
    /// A plain batch, what [`Concatenate`] makes and [`InferenceBackend::infer`] runs.
    Host(Batch),
    /// The assembler's own form (for the torch models, rows of a page-locked buffer), which
    /// only the backend that made the assembler knows how to run.
    Staged(Box<dyn Any + Send>),
}

/// A batch a backend has started (see [`InferenceBackend::submit`]).
pub enum Submitted {
    /// It has run: one output per item, in order.
    Done(Vec<Tensor>),
    /// Its work is queued on the device; [`InferenceBackend::finish`] waits for it and
    /// returns its outputs. What is boxed is the backend's own record of the batch (its
    /// inputs stay alive in it until the device has read them).
    Running(Box<dyn Any + Send>),
}

/// The host half of running a batch: turns the requests' inputs (each already checked
/// against the backend's input spec, in queue order) into one batch. Runs on the
/// batcher's assembler thread, concurrently with the backend running the previous batch.
pub trait BatchAssembler: Send + 'static {
    /// Assembles `items` into one batch, in order.
    fn assemble(&mut self, items: &[&Tensor]) -> Result<AssembledBatch, BackendError>;
}

/// The default assembler: the items' elements concatenated into a [`Batch`].
#[derive(Debug, Clone)]
pub struct Concatenate {
    /// Shape of one item.
    pub item_shape: Vec<i64>,
}

impl BatchAssembler for Concatenate {
    fn assemble(&mut self, items: &[&Tensor]) -> Result<AssembledBatch, BackendError> {
        let Some(first) = items.first() else {
            return Err(BackendError::msg("assembling a batch: it has no items"));
        };
        let mut data = TensorData::with_capacity(first.dtype, items.len() * first.data.len());
        for item in items {
            if !data.extend_from(&item.data) {
                return Err(BackendError::msg(format!(
                    "assembling a batch: it mixes {} and {} items",
                    first.dtype, item.dtype
                )));
            }
        }
        Ok(AssembledBatch {
            n_items: items.len(),
            input: AssembledInput::Host(Batch {
                n_items: items.len(),
                item_shape: self.item_shape.clone(),
                data,
            }),
        })
    }
}

/// A model the server can run. Created on the batcher thread by a [`BackendFactory`].
pub trait InferenceBackend: Send + 'static {
    /// Name for logs, /readyz and error messages (e.g. `test.delay`, `resnet50`).
    fn name(&self) -> &str;
    /// Shape of one item, without the batch dimension (e.g. `[3, 224, 224]`).
    fn input_shape(&self) -> &[i64];
    /// Element type of the input.
    fn dtype(&self) -> Dtype;
    /// Runs whatever makes the first real batch as fast as the rest (allocator, kernels,
    /// cuDNN autotuning). /readyz turns 200 only after this returns `Ok`.
    fn warm_up(&mut self) -> Result<(), BackendError>;
    /// Runs one batch; returns one output per item, in order.
    fn infer(&mut self, batch: Batch) -> Result<Vec<Tensor>, BackendError>;

    /// Whether `u8` image items (raw pixels 0..=255) are taken besides [`Self::dtype`]:
    /// the backend converts and normalizes them itself. Default false.
    fn takes_u8_images(&self) -> bool {
        false
    }

    /// The host half of this backend, called once on the model thread after warm-up and
    /// moved to the assembler thread. Default: [`Concatenate`].
    fn assembler(&mut self) -> Result<Box<dyn BatchAssembler>, BackendError> {
        Ok(Box::new(Concatenate {
            item_shape: self.input_shape().to_vec(),
        }))
    }

    /// Runs a batch its assembler made; returns one output per item, in order. Default: a
    /// [`AssembledInput::Host`] batch goes to [`Self::infer`]; a backend whose assembler
    /// stages batches itself overrides this.
    fn run(&mut self, batch: AssembledBatch) -> Result<Vec<Tensor>, BackendError> {
        match batch.input {
            AssembledInput::Host(batch) => self.infer(batch),
            AssembledInput::Staged(_) => Err(BackendError::msg(format!(
                "running {}: got a batch staged by another assembler",
                self.name()
            ))),
        }
    }

    /// Starts a batch its assembler made. Default: runs it ([`Self::run`]) and returns
    /// [`Submitted::Done`]. A backend whose device works asynchronously returns
    /// [`Submitted::Running`] as soon as the batch's work is queued; the batcher calls
    /// [`Self::finish`] on it next, or, with two batches allowed in flight, first submits
    /// the next batch if one is assembled.
    fn submit(&mut self, batch: AssembledBatch) -> Result<Submitted, BackendError> {
        self.run(batch).map(Submitted::Done)
    }

    /// Waits for a batch [`Self::submit`] returned as [`Submitted::Running`] and returns its
    /// outputs, one per item, in order. Batches are finished in the order they were
    /// submitted. Default: an error, since the default `submit` never returns `Running`.
    fn finish(&mut self, running: Box<dyn Any + Send>) -> Result<Vec<Tensor>, BackendError> {
        drop(running);
        Err(BackendError::msg(format!(
            "finishing a batch on {}: it runs every batch in submit",
            self.name()
        )))
    }

    /// For i64 inputs that index a table (token ids): every element must lie in
    /// `0..index_limit`, else the request is refused with 422 before it is queued (an
    /// out-of-range id would make an embedding lookup fail, on a GPU fatally for the CUDA
    /// context). `None`, the default, checks no values.
    fn index_limit(&self) -> Option<i64> {
        None
    }

    /// The input spec request bodies are checked against.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            shape: self.input_shape().to_vec(),
            dtype: self.dtype(),
            u8_images: self.takes_u8_images(),
        }
    }
}

/// Builds a backend on the batcher thread (so a CUDA context is created on the thread that
/// will use it). Returning `Err` stops the server with `ServeError::LoadModel`.
pub type BackendFactory =
    Box<dyn FnOnce() -> Result<Box<dyn InferenceBackend>, BackendError> + Send + 'static>;
