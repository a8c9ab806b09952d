//! `test.delay`: a CPU backend that sleeps instead of computing, for tests and CI.
//!
//! It stands in for a model with a known service time (a fixed cost per batch plus a cost
//! per item), so latency, batching and load-generation figures can be checked against
//! arithmetic. Its output for each item is the sum of the item's elements, so a client can
//! tell its answer from another request's. Never presented as GPU data.

use std::time::Duration;

use super::backend::{Batch, InferenceBackend};
use super::error::BackendError;
use super::tensor::{Dtype, Tensor, TensorData};

/// Sleeps `per_batch + n_items * per_item` for each batch and returns each item's sum.
#[derive(Debug, Clone)]
pub struct DelayBackend {
    /// Per-item input shape.
    pub input_shape: Vec<i64>,
    /// Input element type.
    pub dtype: Dtype,
    /// Fixed time per batch.
    pub per_batch: Duration,
    /// Additional time per item of a batch.
    pub per_item: Duration,
    /// Time `warm_up` takes (lets tests observe /readyz before warm-up ends).
    pub warm_up: Duration,
}

impl DelayBackend {
    /// A backend taking `[len]` f32 items with a fixed delay per batch and nothing else.
    pub fn new(len: i64, per_batch: Duration) -> Self {
        Self {
            input_shape: vec![len],
            dtype: Dtype::F32,
            per_batch,
            per_item: Duration::ZERO,
            warm_up: Duration::ZERO,
        }
    }

    fn service_time(&self, n_items: usize) -> Duration {
        let n_items = u32::try_from(n_items).unwrap_or(u32::MAX);
        self.per_batch
            .saturating_add(self.per_item.saturating_mul(n_items))
    }
}

impl InferenceBackend for DelayBackend {
    fn name(&self) -> &str {
        "test.delay"
    }

    fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn warm_up(&mut self) -> Result<(), BackendError> {
        std::thread::sleep(self.warm_up);
        Ok(())
    }

    fn infer(&mut self, batch: Batch) -> Result<Vec<Tensor>, BackendError> {
        let delay = self.service_time(batch.n_items);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let item_len = batch.item_len().max(1);
        let sums: Vec<f32> = match &batch.data {
            TensorData::F32(values) => values
                .chunks(item_len)
                .map(|item| item.iter().map(|&v| f64::from(v)).sum::<f64>() as f32)
                .collect(),
            TensorData::I64(values) => values
                .chunks(item_len)
                .map(|item| item.iter().map(|&v| v as f64).sum::<f64>() as f32)
                .collect(),
            TensorData::U8(values) => values
                .chunks(item_len)
                .map(|item| item.iter().map(|&v| f64::from(v)).sum::<f64>() as f32)
                .collect(),
        };
        if sums.len() != batch.n_items {
            return Err(BackendError::msg(format!(
                "summing a batch of {} items: found {} items in {} elements",
                batch.n_items,
                sums.len(),
                batch.data.len()
            )));
        }
        Ok(sums
            .into_iter()
            .map(|sum| Tensor::vector_f32(vec![sum]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_that_runs_in_submit_refuses_to_finish_a_batch() {
        let mut backend = DelayBackend::new(1, Duration::ZERO);
        let err = backend.finish(Box::new(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "finishing a batch on test.delay: it runs every batch in submit"
        );
    }

    #[test]
    fn returns_each_items_sum() {
        let mut backend = DelayBackend::new(2, Duration::ZERO);
        let batch = Batch {
            n_items: 3,
            item_shape: vec![2],
            data: TensorData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        };
        let outputs = backend.infer(batch).unwrap();
        let sums: Vec<TensorData> = outputs.into_iter().map(|t| t.data).collect();
        assert_eq!(
            sums,
            vec![
                TensorData::F32(vec![3.0]),
                TensorData::F32(vec![7.0]),
                TensorData::F32(vec![11.0])
            ]
        );
    }

    #[test]
    fn sleeps_per_batch_plus_per_item() {
        let mut backend = DelayBackend {
            per_item: Duration::from_millis(5),
            ..DelayBackend::new(1, Duration::from_millis(10))
        };
        let start = std::time::Instant::now();
        let batch = Batch {
            n_items: 2,
            item_shape: vec![1],
            data: TensorData::F32(vec![0.0, 0.0]),
        };
        backend.infer(batch).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
