//! The seam between the server and a model: [`InferenceBackend`] and the [`Batch`] it runs.
//!
//! A backend is created, warmed up and run on the batcher's own OS thread, never on the
//! async runtime, so it may block (GPU work, sleeps) and may keep thread-bound state such as
//! a CUDA context. It sees only whole batches; it must not know about HTTP or queues.

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
        }
    }
}

/// Builds a backend on the batcher thread (so a CUDA context is created on the thread that
/// will use it). Returning `Err` stops the server with `ServeError::LoadModel`.
pub type BackendFactory =
    Box<dyn FnOnce() -> Result<Box<dyn InferenceBackend>, BackendError> + Send + 'static>;
