//! Dynamic batching in two stages: an assembler thread and the model thread that owns the
//! backend.
//!
//! Handlers put validated requests into a bounded queue (a full queue is answered 503 by the
//! handler, never waited on). The assembler thread takes the first waiting request, then
//! keeps taking requests until the batch holds `max_batch_size` items or `max_queue_delay`
//! has passed since that first request was queued, and assembles the batch through the
//! backend's [`BatchAssembler`] (the host work: gathering the requests' elements into one
//! staging buffer). It hands the batch to the model thread over a rendezvous channel, so
//! batch k+1 is gathered while the model thread runs batch k and at most one batch waits
//! assembled. The model thread runs the backend on each batch in the order they were
//! formed and answers each request through its own reply channel; with two batches
//! allowed in flight (`--max-batches-in-flight 2`), a backend that queues its work on a
//! device gets batch k+1 submitted before batch k is finished, whenever batch k+1 is
//! assembled by then, so the device does not idle between them. Both are plain threads,
//! not the async runtime, because assembly copies megabytes and backend calls block for as
//! long as the GPU takes. Neither may panic out of a batch: a panic is caught and answered
//! with 500 for that batch only. They stop when every queue sender is gone (the server has
//! shut down) and the queue is drained, so requests accepted before shutdown are still
//! answered.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::backend::{AssembledBatch, BackendFactory, BatchAssembler, InferenceBackend, Submitted};
use super::error::{BackendError, RequestError, ServeError};
use super::metrics::Metrics;
use super::tensor::{InputSpec, Tensor};

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
    /// 1: each batch is finished before the next is submitted; 2: the next batch is
    /// submitted before the current one is finished, when it is assembled by then.
    pub max_in_flight: u8,
}

/// Starts the batcher: the model thread builds the backend, warms it up, starts the
/// assembler thread, publishes `ready` and reports the outcome on `on_ready`, then runs the
/// assembled batches until the queue closes.
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
            let (mut backend, assembler) = match load(&model, factory) {
                Ok(loaded) => loaded,
                Err(err) => {
                    // The receiver is gone only if the server already stopped; nothing to tell.
                    let _ = on_ready.send(Err(err));
                    return;
                }
            };
            let (assembled_tx, assembled) = sync_channel(0);
            let assembler_metrics = Arc::clone(&metrics);
            let assembler_thread = std::thread::Builder::new()
                .name("gpushare-assembler".to_owned())
                .spawn(move || {
                    assemble_batches(assembler, policy, &queue, &assembler_metrics, &assembled_tx)
                });
            let assembler_thread = match assembler_thread {
                Ok(thread) => thread,
                Err(err) => {
                    let _ = on_ready.send(Err(ServeError::SpawnBatcher(err)));
                    return;
                }
            };
            let ready_model = ReadyModel {
                model: backend.name().to_owned(),
                spec: backend.input_spec(),
                index_limit: backend.index_limit(),
            };
            // `ready` is set only here, once, so it cannot already hold a value.
            let _ = ready.set(ready_model.clone());
            let _ = on_ready.send(Ok(ready_model));
            run_batches(backend.as_mut(), &assembled, policy.max_in_flight, &metrics);
            // The assembler ends once the queue is closed and drained, which is also what
            // ended `run_batches`; it catches its own panics, so joining cannot fail.
            let _ = assembler_thread.join();
        })
        .map_err(ServeError::SpawnBatcher)
}

/// A warmed-up backend and its host half.
type Loaded = (Box<dyn InferenceBackend>, Box<dyn BatchAssembler>);

fn load(model: &str, factory: BackendFactory) -> Result<Loaded, ServeError> {
    let mut backend = factory().map_err(|source| ServeError::LoadModel {
        model: model.to_owned(),
        source,
    })?;
    backend.warm_up().map_err(|source| ServeError::WarmUp {
        model: model.to_owned(),
        source,
    })?;
    let assembler = backend
        .assembler()
        .map_err(|source| ServeError::LoadModel {
            model: model.to_owned(),
            source,
        })?;
    Ok((backend, assembler))
}

/// Jobs of one batch and the batch their inputs became.
pub(crate) struct Assembled {
    jobs: Vec<Job>,
    batch: AssembledBatch,
}

/// The assembler thread's loop: form a batch, assemble it, hand it to the model thread
/// (waiting there until the model thread takes it). Ends when the queue is closed and
/// drained, or when the model thread is gone.
pub(crate) fn assemble_batches(
    mut assembler: Box<dyn BatchAssembler>,
    policy: BatchPolicy,
    queue: &Receiver<Job>,
    metrics: &Metrics,
    assembled: &SyncSender<Assembled>,
) {
    while let Some(jobs) = next_batch(queue, policy) {
        metrics.queue_pop(jobs.len());
        if let Some(batch) = assemble(assembler.as_mut(), jobs, metrics) {
            if assembled.send(batch).is_err() {
                return;
            }
        }
    }
}

/// Assembles one batch of the jobs whose clients are still there; answers them 500 itself
/// when assembly fails. `None` when nothing is left to run.
fn assemble(
    assembler: &mut dyn BatchAssembler,
    jobs: Vec<Job>,
    metrics: &Metrics,
) -> Option<Assembled> {
    // A client that hung up no longer needs host or GPU time.
    let jobs: Vec<Job> = jobs
        .into_iter()
        .filter(|job| !job.reply.is_closed())
        .collect();
    if jobs.is_empty() {
        return None;
    }
    let started = Instant::now();
    let items: Vec<&Tensor> = jobs.iter().map(|job| &job.input).collect();
    let result = catch_unwind(AssertUnwindSafe(|| assembler.assemble(&items)));
    metrics.observe_assembly(started.elapsed());
    let failure = match result {
        Ok(Ok(batch)) if batch.n_items == jobs.len() => return Some(Assembled { jobs, batch }),
        Ok(Ok(batch)) => format!(
            "assembling a batch of {}: the assembler made {} items",
            jobs.len(),
            batch.n_items
        ),
        Ok(Err(err)) => err.chain_message(),
        Err(panic) => format!(
            "assembling a batch: the assembler panicked: {}",
            panic_message(panic.as_ref())
        ),
    };
    answer_failure(jobs, &failure);
    None
}

/// A batch the backend has queued on its device and not yet finished.
struct InFlight {
    jobs: Vec<Job>,
    running: Box<dyn Any + Send>,
    started: Instant,
}

/// The model thread's loop. With `max_in_flight` 1 each batch is finished before the next
/// is taken. With 2 and a batch in flight, the next one is submitted first if it is already
/// assembled (so the device has it queued when the current one ends, instead
/// of idling while the host answers and launches), and the current one is finished
/// right away if not (a batch is never held back for one that may be long in coming).
fn run_batches(
    backend: &mut dyn InferenceBackend,
    assembled: &Receiver<Assembled>,
    max_in_flight: u8,
    metrics: &Metrics,
) {
    let mut in_flight: Option<InFlight> = None;
    loop {
        if max_in_flight < 2 {
            if let Some(current) = in_flight.take() {
                finish_batch(backend, current, metrics);
            }
        }
        let next = if in_flight.is_some() {
            assembled.try_recv().ok()
        } else {
            match assembled.recv() {
                Ok(next) => Some(next),
                Err(_) => break,
            }
        };
        let submitted =
            next.and_then(|Assembled { jobs, batch }| submit_batch(backend, jobs, batch, metrics));
        if let Some(current) = in_flight.take() {
            finish_batch(backend, current, metrics);
        }
        in_flight = submitted;
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

/// Submits one batch; answers it here if the backend ran it already (or failed), else
/// returns it to be finished.
fn submit_batch(
    backend: &mut dyn InferenceBackend,
    jobs: Vec<Job>,
    batch: AssembledBatch,
    metrics: &Metrics,
) -> Option<InFlight> {
    let started = Instant::now();
    let outcome = match catch_unwind(AssertUnwindSafe(|| backend.submit(batch))) {
        Ok(Ok(Submitted::Running(running))) => {
            return Some(InFlight {
                jobs,
                running,
                started,
            })
        }
        Ok(Ok(Submitted::Done(outputs))) => Ok(Ok(outputs)),
        Ok(Err(err)) => Ok(Err(err)),
        Err(panic) => Err(panic),
    };
    answer(backend.name(), jobs, outcome, started, metrics);
    None
}

/// Waits for a batch in flight and answers it.
fn finish_batch(backend: &mut dyn InferenceBackend, batch: InFlight, metrics: &Metrics) {
    let InFlight {
        jobs,
        running,
        started,
    } = batch;
    let outcome = catch_unwind(AssertUnwindSafe(|| backend.finish(running)));
    answer(backend.name(), jobs, outcome, started, metrics);
}

/// Answers each job of a batch with its output, or all of them with the batch's failure,
/// and records the batch's backend time (from its submission).
fn answer(
    backend: &str,
    jobs: Vec<Job>,
    outcome: std::thread::Result<Result<Vec<Tensor>, BackendError>>,
    started: Instant,
    metrics: &Metrics,
) {
    let n_items = jobs.len();
    metrics.observe_batch(n_items, started.elapsed());
    let failure = match outcome {
        Ok(Ok(outputs)) if outputs.len() == n_items => {
            for (job, output) in jobs.into_iter().zip(outputs) {
                // A receiver dropped since assembly just means the client left.
                let _ = job.reply.send(Ok(Reply {
                    output,
                    batch_size: n_items,
                }));
            }
            return;
        }
        Ok(Ok(outputs)) => format!(
            "backend {backend} returned {} outputs for a batch of {n_items}",
            outputs.len()
        ),
        Ok(Err(err)) => err.chain_message(),
        Err(panic) => format!(
            "backend {backend} panicked: {}",
            panic_message(panic.as_ref())
        ),
    };
    answer_failure(jobs, &failure);
}

fn answer_failure(jobs: Vec<Job>, failure: &str) {
    for job in jobs {
        let _ = job.reply.send(Err(RequestError::Backend {
            message: failure.to_owned(),
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
    use super::super::backend::{Batch, Concatenate};
    use super::super::error::BackendError;
    use super::super::tensor::{Dtype, TensorData};
    use super::*;

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
            max_in_flight: 2,
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
            max_in_flight: 2,
        };
        let started = Instant::now();
        let batch = next_batch(&rx, policy).unwrap();
        let waited = started.elapsed();
        assert_eq!(batch.len(), 1);
        assert!(waited >= Duration::from_millis(45), "waited {waited:?}");
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    }

    /// What every test backend here answers alike: its name, items of one f32, nothing to
    /// warm up.
    macro_rules! one_f32_item_backend {
        ($name:literal) => {
            fn name(&self) -> &str {
                $name
            }
            fn input_shape(&self) -> &[i64] {
                &[1]
            }
            fn dtype(&self) -> Dtype {
                Dtype::F32
            }
            fn warm_up(&mut self) -> Result<(), BackendError> {
                Ok(())
            }
        };
    }

    struct PanickingBackend;

    impl InferenceBackend for PanickingBackend {
        one_f32_item_backend!("test.panic");
        fn infer(&mut self, _: Batch) -> Result<Vec<Tensor>, BackendError> {
            panic!("boom")
        }
    }

    fn assembled(items: &[&Tensor]) -> AssembledBatch {
        Concatenate {
            item_shape: vec![1],
        }
        .assemble(items)
        .unwrap()
    }

    #[test]
    fn a_panicking_backend_answers_500_and_the_thread_survives() {
        let mut backend = PanickingBackend;
        let (job, mut reply) = job();
        let batch = assembled(&[&job.input]);
        let (tx, rx) = sync_channel(1);
        tx.send(Assembled {
            jobs: vec![job],
            batch,
        })
        .unwrap();
        drop(tx);
        run_batches(&mut backend, &rx, 2, &Metrics::new(1));
        let err = reply.try_recv().unwrap().err().unwrap();
        assert_eq!(
            err,
            RequestError::Backend {
                message: "backend test.panic panicked: boom".to_owned()
            }
        );
    }

    /// Answers each item with its own elements, records the first element of every batch
    /// it runs, and takes `delay` per batch.
    struct EchoBackend {
        delay: Duration,
        seen: Arc<std::sync::Mutex<Vec<Vec<f32>>>>,
    }

    impl InferenceBackend for EchoBackend {
        one_f32_item_backend!("test.echo");
        fn infer(&mut self, batch: Batch) -> Result<Vec<Tensor>, BackendError> {
            std::thread::sleep(self.delay);
            let TensorData::F32(values) = batch.data else {
                return Err(BackendError::msg("not f32"));
            };
            self.seen.lock().unwrap().push(values.clone());
            Ok(values
                .into_iter()
                .map(|value| Tensor::vector_f32(vec![value]))
                .collect())
        }
    }

    struct Running {
        queue: std::sync::mpsc::SyncSender<Job>,
        thread: std::thread::JoinHandle<()>,
        metrics: Arc<Metrics>,
        seen: Arc<std::sync::Mutex<Vec<Vec<f32>>>>,
    }

    fn start_echo(delay: Duration, policy: BatchPolicy) -> Running {
        let (queue, jobs) = sync_channel(4096);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let backend_seen = Arc::clone(&seen);
        let factory: BackendFactory = Box::new(move || {
            Ok(Box::new(EchoBackend {
                delay,
                seen: backend_seen,
            }) as Box<dyn InferenceBackend>)
        });
        let metrics = Arc::new(Metrics::new(policy.max_batch_size));
        let (on_ready, ready_rx) = oneshot::channel();
        let thread = spawn(
            "test.echo".to_owned(),
            factory,
            policy,
            jobs,
            Arc::clone(&metrics),
            Arc::new(OnceLock::new()),
            on_ready,
        )
        .unwrap();
        ready_rx.blocking_recv().unwrap().unwrap();
        Running {
            queue,
            thread,
            metrics,
            seen,
        }
    }

    fn job_of(value: f32) -> (Job, oneshot::Receiver<Result<Reply, RequestError>>) {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            input: Tensor::vector_f32(vec![value]),
            enqueued_at: Instant::now(),
            reply,
        };
        (job, rx)
    }

    #[test]
    fn the_pipeline_answers_every_request_with_its_own_output_under_concurrency() {
        let running = start_echo(
            Duration::from_millis(2),
            BatchPolicy {
                max_batch_size: 8,
                max_queue_delay: Duration::from_millis(1),
                max_in_flight: 2,
            },
        );
        let senders: Vec<_> = (0..8)
            .map(|thread| {
                let queue = running.queue.clone();
                std::thread::spawn(move || {
                    let replies: Vec<_> = (0..100)
                        .map(|i| {
                            let value = (thread * 1000 + i) as f32;
                            let (job, reply) = job_of(value);
                            queue.send(job).unwrap();
                            (value, reply)
                        })
                        .collect();
                    for (value, reply) in replies {
                        let reply = reply.blocking_recv().unwrap().unwrap();
                        assert_eq!(reply.output, Tensor::vector_f32(vec![value]));
                        assert!((1..=8).contains(&reply.batch_size));
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let Running {
            queue,
            thread,
            metrics,
            seen,
        } = running;
        drop(queue);
        thread.join().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 800);
        // Each sender's requests ran in the order it queued them: batches keep queue order.
        for thread in 0..8 {
            let mine: Vec<f32> = seen
                .iter()
                .flatten()
                .copied()
                .filter(|value| (*value as usize) / 1000 == thread)
                .collect();
            assert!(mine.windows(2).all(|pair| pair[0] < pair[1]), "{mine:?}");
        }
        let text = metrics.encode().unwrap();
        let batches = seen.len();
        for line in [
            format!("gpushare_serve_batch_assembly_seconds_count {batches}"),
            format!("gpushare_serve_batch_duration_seconds_count {batches}"),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_next_batch_is_assembled_while_the_current_one_runs() {
        // 5 full batches of 4 at 100 ms each: the assembler takes batch k+1 off the queue
        // while batch k runs, so the queue is empty long before the last batch finishes,
        // and the batches are full and in order.
        let running = start_echo(
            Duration::from_millis(100),
            BatchPolicy {
                max_batch_size: 4,
                max_queue_delay: Duration::from_millis(50),
                max_in_flight: 2,
            },
        );
        let replies: Vec<_> = (0..20)
            .map(|i| {
                let (job, reply) = job_of(i as f32);
                running.queue.send(job).unwrap();
                reply
            })
            .collect();
        for reply in replies {
            assert_eq!(reply.blocking_recv().unwrap().unwrap().batch_size, 4);
        }
        drop(running.queue);
        running.thread.join().unwrap();
        let seen = running.seen.lock().unwrap();
        let expected: Vec<Vec<f32>> = (0..5)
            .map(|batch| (0..4).map(|i| (batch * 4 + i) as f32).collect())
            .collect();
        assert_eq!(*seen, expected);
    }

    /// Queues each batch ("submit" takes `launch`, as launching a model's kernels does)
    /// and completes it in `finish` (taking `run`), recording the order of the calls.
    struct QueueingBackend {
        launch: Duration,
        run: Duration,
        calls: Arc<std::sync::Mutex<Vec<String>>>,
        submitted: usize,
    }

    impl InferenceBackend for QueueingBackend {
        one_f32_item_backend!("test.queueing");
        fn infer(&mut self, _: Batch) -> Result<Vec<Tensor>, BackendError> {
            Err(BackendError::msg("runs only through submit and finish"))
        }
        fn submit(&mut self, batch: AssembledBatch) -> Result<Submitted, BackendError> {
            std::thread::sleep(self.launch);
            let index = self.submitted;
            self.submitted += 1;
            self.calls.lock().unwrap().push(format!("submit {index}"));
            let super::super::backend::AssembledInput::Host(batch) = batch.input else {
                return Err(BackendError::msg("not a host batch"));
            };
            Ok(Submitted::Running(Box::new((index, batch))))
        }
        fn finish(&mut self, running: Box<dyn Any + Send>) -> Result<Vec<Tensor>, BackendError> {
            let (index, batch) = *running.downcast::<(usize, Batch)>().unwrap();
            std::thread::sleep(self.run);
            self.calls.lock().unwrap().push(format!("finish {index}"));
            let TensorData::F32(values) = batch.data else {
                return Err(BackendError::msg("not f32"));
            };
            Ok(values
                .into_iter()
                .map(|value| Tensor::vector_f32(vec![value]))
                .collect())
        }
    }

    struct Queueing {
        queue: std::sync::mpsc::SyncSender<Job>,
        thread: std::thread::JoinHandle<()>,
        calls: Arc<std::sync::Mutex<Vec<String>>>,
    }

    /// Starts the batcher on a [`QueueingBackend`] with batches of up to 4.
    fn start_queueing(launch: Duration, run: Duration, max_in_flight: u8) -> Queueing {
        let (queue, jobs) = sync_channel(64);
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let backend_calls = Arc::clone(&calls);
        let factory: BackendFactory = Box::new(move || {
            Ok(Box::new(QueueingBackend {
                launch,
                run,
                calls: backend_calls,
                submitted: 0,
            }) as Box<dyn InferenceBackend>)
        });
        let (on_ready, ready_rx) = oneshot::channel();
        // A batch waits up to 50 ms to fill: requests queued in a burst make full batches.
        let policy = BatchPolicy {
            max_batch_size: 4,
            max_queue_delay: Duration::from_millis(50),
            max_in_flight,
        };
        let thread = spawn(
            "test.queueing".to_owned(),
            factory,
            policy,
            jobs,
            Arc::new(Metrics::new(4)),
            Arc::new(OnceLock::new()),
            on_ready,
        )
        .unwrap();
        ready_rx.blocking_recv().unwrap().unwrap();
        Queueing {
            queue,
            thread,
            calls,
        }
    }

    #[test]
    fn a_queueing_backend_gets_the_next_batch_before_the_current_one_is_finished() {
        // 20 queued requests make 5 full batches; each submit takes 20 ms, long enough for
        // the assembler to have the next batch waiting, so every batch after the first is
        // submitted while the one before it is still in flight.
        let Queueing {
            queue,
            thread,
            calls,
        } = start_queueing(Duration::from_millis(20), Duration::from_millis(5), 2);
        let replies: Vec<_> = (0..20)
            .map(|i| {
                let (job, reply) = job_of(i as f32);
                queue.send(job).unwrap();
                (i, reply)
            })
            .collect();
        for (i, reply) in replies {
            let reply = reply.blocking_recv().unwrap().unwrap();
            assert_eq!(reply.output, Tensor::vector_f32(vec![i as f32]));
        }
        drop(queue);
        thread.join().unwrap();
        let calls = calls.lock().unwrap();
        assert_eq!(
            *calls,
            [
                "submit 0", "submit 1", "finish 0", "submit 2", "finish 1", "submit 3", "finish 2",
                "submit 4", "finish 3", "finish 4"
            ]
        );
    }

    #[test]
    fn with_one_batch_in_flight_each_batch_is_finished_before_the_next_is_submitted() {
        let Queueing {
            queue,
            thread,
            calls,
        } = start_queueing(Duration::from_millis(20), Duration::from_millis(5), 1);
        let replies: Vec<_> = (0..12)
            .map(|i| {
                let (job, reply) = job_of(i as f32);
                queue.send(job).unwrap();
                reply
            })
            .collect();
        for reply in replies {
            reply.blocking_recv().unwrap().unwrap();
        }
        drop(queue);
        thread.join().unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            ["submit 0", "finish 0", "submit 1", "finish 1", "submit 2", "finish 2"]
        );
    }

    /// Leaves every batch running; finishing fails batch 0 with an error and panics on
    /// batch 1.
    struct FailingFinish {
        submitted: usize,
    }

    impl InferenceBackend for FailingFinish {
        one_f32_item_backend!("test.failing-finish");
        fn infer(&mut self, _: Batch) -> Result<Vec<Tensor>, BackendError> {
            Err(BackendError::msg("runs only through submit and finish"))
        }
        fn submit(&mut self, _: AssembledBatch) -> Result<Submitted, BackendError> {
            self.submitted += 1;
            Ok(Submitted::Running(Box::new(self.submitted - 1)))
        }
        fn finish(&mut self, running: Box<dyn Any + Send>) -> Result<Vec<Tensor>, BackendError> {
            match *running.downcast::<usize>().unwrap() {
                0 => Err(BackendError::msg("the device faulted")),
                _ => panic!("lost the event"),
            }
        }
    }

    #[test]
    fn a_failing_or_panicking_finish_answers_500_for_its_batch_only() {
        let (tx, rx) = sync_channel(2);
        let mut replies = Vec::new();
        for _ in 0..2 {
            let (a, reply_a) = job();
            let (b, reply_b) = job();
            let batch = assembled(&[&a.input, &b.input]);
            tx.send(Assembled {
                jobs: vec![a, b],
                batch,
            })
            .unwrap();
            replies.push([reply_a, reply_b]);
        }
        drop(tx);
        run_batches(
            &mut FailingFinish { submitted: 0 },
            &rx,
            2,
            &Metrics::new(2),
        );
        for (batch, expected) in replies.iter_mut().zip([
            "the device faulted",
            "backend test.failing-finish panicked: lost the event",
        ]) {
            for reply in batch {
                assert_eq!(
                    reply.try_recv().unwrap().err().unwrap(),
                    RequestError::Backend {
                        message: expected.to_owned()
                    }
                );
            }
        }
    }

    #[test]
    fn a_lone_batch_in_flight_is_finished_without_waiting_for_another() {
        let Queueing {
            queue,
            thread,
            calls,
        } = start_queueing(Duration::ZERO, Duration::ZERO, 2);
        let (job, reply) = job_of(7.0);
        queue.send(job).unwrap();
        // If the batcher held the batch for a next one, no answer would come while the
        // queue stays open.
        let (answered_tx, answered) = std::sync::mpsc::channel();
        std::thread::spawn(move || answered_tx.send(reply.blocking_recv()));
        let reply = answered
            .recv_timeout(Duration::from_secs(10))
            .expect("a lone batch was not answered while the queue stayed open")
            .unwrap()
            .unwrap();
        assert_eq!(reply.output, Tensor::vector_f32(vec![7.0]));
        assert_eq!(*calls.lock().unwrap(), ["submit 0", "finish 0"]);
        drop(queue);
        thread.join().unwrap();
    }

    struct FailingAssembler;

    impl BatchAssembler for FailingAssembler {
        fn assemble(&mut self, items: &[&Tensor]) -> Result<AssembledBatch, BackendError> {
            if items.len() > 1 {
                panic!("too many");
            }
            Err(BackendError::msg("assembling a batch: no buffer"))
        }
    }

    #[test]
    fn a_failing_or_panicking_assembler_answers_500_for_its_batch_only() {
        let metrics = Metrics::new(2);
        let (one, mut reply) = job();
        assert!(assemble(&mut FailingAssembler, vec![one], &metrics).is_none());
        assert_eq!(
            reply.try_recv().unwrap().err().unwrap(),
            RequestError::Backend {
                message: "assembling a batch: no buffer".to_owned()
            }
        );
        let ((a, mut reply_a), (b, mut reply_b)) = (job(), job());
        assert!(assemble(&mut FailingAssembler, vec![a, b], &metrics).is_none());
        for reply in [&mut reply_a, &mut reply_b] {
            assert_eq!(
                reply.try_recv().unwrap().err().unwrap(),
                RequestError::Backend {
                    message: "assembling a batch: the assembler panicked: too many".to_owned()
                }
            );
        }
        // A batch whose clients all left is not assembled at all.
        let (gone, reply) = job();
        drop(reply);
        assert!(assemble(&mut FailingAssembler, vec![gone], &metrics).is_none());
    }
}
