//! Dynamic batching: the one OS thread that owns the backend.
//!
//! Handlers put validated requests into a bounded queue (a full queue is answered 503 by the
//! handler, never waited on). This thread takes the first waiting request, then keeps
//! taking requests until the batch holds `max_batch_size` items or `max_queue_delay` has
//! passed since that first request was queued, runs the backend on the batch, and answers
//! each request through its own reply channel. It runs on a plain thread, not the async
//! runtime, because backend calls block for as long as the GPU takes. It must not panic
//! out of a batch: a backend panic is caught and answered with 500 for that batch only.
//! It stops when every queue sender is gone (the server has shut down) and the queue is
//! drained, so requests accepted before shutdown are still answered.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::backend::{BackendFactory, Batch, InferenceBackend};
use super::error::{RequestError, ServeError};
use super::metrics::Metrics;
use super::tensor::{InputSpec, Tensor, TensorData};

/// One queued request.
pub(crate) struct Job {
    /// The request's input, already checked against the backend's input spec.
    pub input: Tensor,
    /// When the request entered the queue; the batch deadline counts from its first job's.
    pub enqueued_at: Instant,
    /// Where the answer goes; closed when the client went away.
    pub reply: oneshot::Sender<Result<Reply, RequestError>>,
}

/// A successful answer.
pub(crate) struct Reply {
    pub output: Tensor,
    /// Items in the batch this request was answered from.
    pub batch_size: usize,
}

/// What the backend serves, published once warm-up succeeded.
#[derive(Debug, Clone)]
pub(crate) struct ReadyModel {
    pub model: String,
    pub spec: InputSpec,
    /// See `InferenceBackend::index_limit`.
    pub index_limit: Option<i64>,
}

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPolicy {
    pub max_batch_size: usize,
    pub max_queue_delay: Duration,
}

/// Starts the batcher thread: it builds the backend, warms it up, publishes `ready` and
/// reports the outcome on `on_ready`, then serves batches until the queue closes.
pub(crate) fn spawn(
    model: String,
    factory: BackendFactory,
    policy: BatchPolicy,
    queue: Receiver<Job>,
    metrics: Arc<Metrics>,
    ready: Arc<OnceLock<ReadyModel>>,
    on_ready: oneshot::Sender<Result<ReadyModel, ServeError>>,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    std::thread::Builder::new()
        .name("gpushare-batcher".to_owned())
        .spawn(move || {
            let mut backend = match load(&model, factory) {
                Ok(backend) => backend,
                Err(err) => {
                    // The receiver is gone only if the server already stopped; nothing to tell.
                    let _ = on_ready.send(Err(err));
                    return;
                }
            };
            let ready_model = ReadyModel {
                model: backend.name().to_owned(),
                spec: backend.input_spec(),
                index_limit: backend.index_limit(),
            };
            let spec = ready_model.spec.clone();
            // `ready` is set only here, once, so it cannot already hold a value.
            let _ = ready.set(ready_model.clone());
            let _ = on_ready.send(Ok(ready_model));
            serve_batches(backend.as_mut(), &spec, policy, &queue, &metrics);
        })
        .map_err(ServeError::SpawnBatcher)
}

fn load(model: &str, factory: BackendFactory) -> Result<Box<dyn InferenceBackend>, ServeError> {
    let mut backend = factory().map_err(|source| ServeError::LoadModel {
        model: model.to_owned(),
        source,
    })?;
    backend.warm_up().map_err(|source| ServeError::WarmUp {
        model: model.to_owned(),
        source,
    })?;
    Ok(backend)
}

fn serve_batches(
    backend: &mut dyn InferenceBackend,
    spec: &InputSpec,
    policy: BatchPolicy,
    queue: &Receiver<Job>,
    metrics: &Metrics,
) {
    while let Some(jobs) = next_batch(queue, policy) {
        metrics.queue_pop(jobs.len());
        run_batch(backend, spec, jobs, metrics);
    }
}

/// Blocks for the first job, then gathers more until the batch is full or the first job's
/// deadline passes. `None` once the queue is closed and empty.
pub(crate) fn next_batch(queue: &Receiver<Job>, policy: BatchPolicy) -> Option<Vec<Job>> {
    let first = queue.recv().ok()?;
    let deadline = first.enqueued_at + policy.max_queue_delay;
    let mut jobs = Vec::with_capacity(policy.max_batch_size);
    jobs.push(first);
    while jobs.len() < policy.max_batch_size {
        match queue.try_recv() {
            Ok(job) => {
                jobs.push(job);
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match queue.recv_timeout(deadline - now) {
            Ok(job) => jobs.push(job),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(jobs)
}

fn run_batch(
    backend: &mut dyn InferenceBackend,
    spec: &InputSpec,
    jobs: Vec<Job>,
    metrics: &Metrics,
) {
    // A client that hung up no longer needs GPU time.
    let jobs: Vec<Job> = jobs
        .into_iter()
        .filter(|job| !job.reply.is_closed())
        .collect();
    if jobs.is_empty() {
        return;
    }
    let n_items = jobs.len();
    let mut data = TensorData::with_capacity(spec.dtype, n_items * spec.item_len());
    for job in &jobs {
        // Handlers checked every input against `spec`, so the dtypes always match.
        data.extend_from(&job.input.data);
    }
    let batch = Batch {
        n_items,
        item_shape: spec.shape.clone(),
        data,
    };
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| backend.infer(batch)));
    metrics.observe_batch(n_items, started.elapsed());
    let failure = match result {
        Ok(Ok(outputs)) if outputs.len() == n_items => {
            for (job, output) in jobs.into_iter().zip(outputs) {
                // A receiver dropped since the check above just means the client left.
                let _ = job.reply.send(Ok(Reply {
                    output,
                    batch_size: n_items,
                }));
            }
            return;
        }
        Ok(Ok(outputs)) => format!(
            "backend {} returned {} outputs for a batch of {n_items}",
            backend.name(),
            outputs.len()
        ),
        Ok(Err(err)) => err.chain_message(),
        Err(panic) => format!(
            "backend {} panicked: {}",
            backend.name(),
            panic_message(panic.as_ref())
        ),
    };
    for job in jobs {
        let _ = job.reply.send(Err(RequestError::Backend {
            message: failure.clone(),
        }));
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn job() -> (Job, oneshot::Receiver<Result<Reply, RequestError>>) {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            input: Tensor::vector_f32(vec![1.0]),
            enqueued_at: Instant::now(),
            reply,
        };
        (job, rx)
    }

    #[test]
    fn takes_what_is_queued_up_to_the_maximum() {
        let (tx, rx) = sync_channel(16);
        let mut receivers = Vec::new();
        for _ in 0..5 {
            let (job, reply) = job();
            tx.send(job).unwrap();
            receivers.push(reply);
        }
        let policy = BatchPolicy {
            max_batch_size: 3,
            max_queue_delay: Duration::ZERO,
        };
        assert_eq!(next_batch(&rx, policy).unwrap().len(), 3);
        assert_eq!(next_batch(&rx, policy).unwrap().len(), 2);
        drop(tx);
        assert!(next_batch(&rx, policy).is_none());
    }

    #[test]
    fn waits_at_most_the_queue_delay_from_the_first_job() {
        let (tx, rx) = sync_channel(16);
        let (first, _reply) = job();
        tx.send(first).unwrap();
        let policy = BatchPolicy {
            max_batch_size: 8,
            max_queue_delay: Duration::from_millis(50),
        };
        let started = Instant::now();
        let batch = next_batch(&rx, policy).unwrap();
        let waited = started.elapsed();
        assert_eq!(batch.len(), 1);
        assert!(waited >= Duration::from_millis(45), "waited {waited:?}");
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    }

    struct PanickingBackend;

    impl InferenceBackend for PanickingBackend {
        fn name(&self) -> &str {
            "test.panic"
        }
        fn input_shape(&self) -> &[i64] {
            &[1]
        }
        fn dtype(&self) -> super::super::tensor::Dtype {
            super::super::tensor::Dtype::F32
        }
        fn warm_up(&mut self) -> Result<(), super::super::error::BackendError> {
            Ok(())
        }
        fn infer(&mut self, _: Batch) -> Result<Vec<Tensor>, super::super::error::BackendError> {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_backend_answers_500_and_the_thread_survives() {
        let mut backend = PanickingBackend;
        let spec = backend.input_spec();
        let (job, mut reply) = job();
        run_batch(&mut backend, &spec, vec![job], &Metrics::new(1));
        let err = reply.try_recv().unwrap().err().unwrap();
        assert_eq!(
            err,
            RequestError::Backend {
                message: "backend test.panic panicked: boom".to_owned()
            }
        );
    }
}
