//! `serve.<model>`: an inference service as a tenant. The worker runs `gpushare serve`'s
//! server in-process and one open-loop load generator as its child process, and reports the
//! requests as they finish: one tenant with a throughput in requests/s, latency
//! percentiles from each request's intended send time, and an SLO verdict.
//!
//! `prepare` starts the server (the model on its batcher thread, bound to 127.0.0.1 on an
//! OS-chosen port), waits until the model is loaded and warmed up, builds one request body
//! (a valid input drawn from the tenant's seed), starts the generator
//! (`gpushare load --stream` at `rate` requests/s, Poisson when asked, seeded from the
//! tenant's seed), and lets it load the server for the warm-up time; at least one warm-up
//! request must be answered. The load then runs for as long as the worker lives: between
//! Ready and Go, and through the window, so the server is in its steady state when
//! measurement starts.
//!
//! Each `step` returns one finished request (see [`failures`] for failed ones): a 2xx
//! answer is one item with `latency_s` from its intended send time. Requests that finished
//! before the first step after Ready (warm-up and the wait for Go) are discarded. The step's
//! own wall time is only the wait for the next completion and means nothing.
//!
//! Models: every model `gpushare serve` has. `serve.delay` is the CPU fixture
//! (`test.delay`, a sleep) so the whole path runs in CI; `serve.resnet50` and
//! `serve.bert-base` need the `torch` feature and are listed as unavailable without it.
//!
//! Knows nothing of other tenants; must never leave its generator running (see
//! [`generator`]).

mod failures;
mod generator;
mod params;
mod server;

pub use params::{BackendSpec, ServeTenantSpec, BERT_BASE_PARAMS, DELAY_PARAMS, RESNET50_PARAMS};

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Step, Workload, WorkloadError};
use crate::load::{Completion, StreamLine};
use crate::serve::{
    backend_factory, BackendFactory, DelayBackend, Dtype, InferenceBackend, ReadyModel, ServeArgs,
    ServeModel, Tensor, TensorData,
};
use failures::{OutcomeCounts, RecentOutcomes};
use generator::{GeneratorEvent, GeneratorProcess};
use server::InProcessServer;

/// Token ids drawn for an i64 input whose model states no vocabulary.
const DEFAULT_INDEX_LIMIT: i64 = 1000;
/// Separates the request body's random stream from the schedule's (which uses the seed
/// itself) so the two never share draws.
const BODY_STREAM: u64 = 0x7365_7276_6562_6f64;

/// The models a serving tenant can run, one per `gpushare serve --model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeTenantModel {
    Delay,
    Resnet50,
    BertBase,
}

impl ServeTenantModel {
    /// The workload's name as scenario files write it.
    pub fn workload_name(self) -> &'static str {
        match self {
            Self::Delay => "serve.delay",
            Self::Resnet50 => "serve.resnet50",
            Self::BertBase => "serve.bert-base",
        }
    }

    /// The model as `gpushare serve` knows it.
    pub fn serve_model(self) -> ServeModel {
        match self {
            Self::Delay => ServeModel::TestDelay,
            Self::Resnet50 => ServeModel::Resnet50,
            Self::BertBase => ServeModel::BertBase,
        }
    }
}

/// `serve.delay`'s constructor for the registry.
pub fn build_delay(params: &super::Params, seed: u64) -> Result<Box<dyn Workload>, WorkloadError> {
    build(ServeTenantModel::Delay, params, seed)
}

/// `serve.resnet50`'s constructor for the registry.
pub fn build_resnet50(
    params: &super::Params,
    seed: u64,
) -> Result<Box<dyn Workload>, WorkloadError> {
    build(ServeTenantModel::Resnet50, params, seed)
}

/// `serve.bert-base`'s constructor for the registry.
pub fn build_bert_base(
    params: &super::Params,
    seed: u64,
) -> Result<Box<dyn Workload>, WorkloadError> {
    build(ServeTenantModel::BertBase, params, seed)
}

fn build(
    model: ServeTenantModel,
    params: &super::Params,
    seed: u64,
) -> Result<Box<dyn Workload>, WorkloadError> {
    let spec = ServeTenantSpec::from_params(model, params)?;
    Ok(Box::new(ServeTenant {
        spec,
        seed,
        running: None,
        measuring_since: None,
        recent: RecentOutcomes::default(),
        steps: 0,
    }))
}

pub struct ServeTenant {
    spec: ServeTenantSpec,
    seed: u64,
    running: Option<Running>,
    /// When the first step after Ready began; completions before it are discarded.
    measuring_since: Option<Instant>,
    recent: RecentOutcomes,
    steps: u64,
}

/// The server and its load, once prepared.
struct Running {
    // Declared first so it is dropped first: the load stops before the server does.
    generator: GeneratorProcess,
    _server: InProcessServer,
}

impl ServeTenant {
    fn name(&self) -> &'static str {
        self.spec.model.workload_name()
    }

    fn prepare_error(&self, reason: impl Into<String>) -> WorkloadError {
        WorkloadError::Prepare {
            workload: self.name().to_owned(),
            reason: reason.into(),
        }
    }

    fn step_error(&self, reason: impl Into<String>) -> WorkloadError {
        WorkloadError::Step {
            workload: self.name().to_owned(),
            step: self.steps,
            reason: reason.into(),
        }
    }

    /// The backend factory for this tenant's model.
    fn factory(&self) -> BackendFactory {
        match &self.spec.backend {
            BackendSpec::Delay {
                per_batch,
                per_item,
                warm_up,
            } => {
                let backend = DelayBackend {
                    per_item: *per_item,
                    warm_up: *warm_up,
                    ..DelayBackend::new(4, *per_batch)
                };
                Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>))
            }
            BackendSpec::Torch {
                device,
                precision,
                tiny,
                seq_len,
                cuda_graphs,
            } => backend_factory(&ServeArgs {
                model: self.spec.model.serve_model(),
                bind: self.spec.server_config().bind,
                max_batch_size: self.spec.max_batch_size,
                max_queue_delay: self.spec.max_queue_delay,
                queue_capacity: self.spec.queue_capacity,
                max_batches_in_flight: crate::serve::ServeConfig::default().max_batches_in_flight,
                max_body_bytes: crate::serve::ServeConfig::default().max_body_bytes,
                max_connections: self.spec.server_config().limits.max_connections,
                idle_timeout: crate::serve::ServeConfig::default().limits.idle_timeout,
                header_read_timeout: crate::serve::ServeConfig::default()
                    .limits
                    .header_read_timeout,
                body_read_timeout: crate::serve::ServeConfig::default().body_read_timeout,
                shutdown_timeout: crate::serve::ServeConfig::default().limits.shutdown_timeout,
                ready_file: None,
                delay: Duration::ZERO,
                delay_per_item: Duration::ZERO,
                input_shape: vec![4],
                dtype: Dtype::F32,
                device: device.clone(),
                precision: *precision,
                tiny: *tiny,
                seq_len: *seq_len,
                cuda_graphs: *cuda_graphs,
            }),
        }
    }

    /// The next finished request, or why there will be none.
    fn next_completion(&mut self) -> Result<(Instant, Completion), String> {
        let Some(running) = self.running.as_mut() else {
            return Err(format!("running `{}` before its prepare", self.name()));
        };
        loop {
            match running.generator.next_event() {
                GeneratorEvent::Line {
                    arrived,
                    line: StreamLine::Done(completion),
                } => return Ok((arrived, completion)),
                GeneratorEvent::Line {
                    line: StreamLine::Started { .. },
                    ..
                } => continue,
                GeneratorEvent::Garbled(line) => {
                    return Err(format!("the load generator wrote a stray line {line}"))
                }
                GeneratorEvent::Closed => return Err(self.generator_ended()),
            }
        }
    }

    /// What to say once the generator's stream has ended.
    fn generator_ended(&mut self) -> String {
        let Some(running) = self.running.as_mut() else {
            return "the load generator is not running".to_owned();
        };
        let pid = running.generator.pid();
        let status = running.generator.exit_status();
        format!(
            "the load generator (pid {pid}) ended with {status}; its messages are in this \
             worker's stderr"
        )
    }
}

impl Workload for ServeTenant {
    fn prepare(&mut self, warmup: Duration) -> Result<(), WorkloadError> {
        let mut server = InProcessServer::start(
            self.spec.server_config(),
            self.spec.model.serve_model().name(),
            self.factory(),
        )
        .map_err(|reason| self.prepare_error(format!("starting the server: {reason}")))?;
        let ready = server
            .wait_ready()
            .map_err(|reason| self.prepare_error(format!("starting the server: {reason}")))?;
        let body = request_body(&ready, self.seed).ok_or_else(|| {
            self.prepare_error(format!(
                "the model's input {:?} has no valid shape",
                ready.spec.shape
            ))
        })?;
        let body_file = write_body(&body)
            .map_err(|err| self.prepare_error(format!("writing the request body: {err}")))?;
        let exe = std::env::current_exe().map_err(|err| {
            self.prepare_error(format!(
                "finding the gpushare executable for the load generator: {err}"
            ))
        })?;
        let args = generator::load_args(&self.spec, server.addr(), self.seed, body_file.path());
        let generator = GeneratorProcess::start(&exe, &args).map_err(|r| self.prepare_error(r))?;
        // The generator reads the body before it opens its connections and says it has
        // started: from then on the file is not needed.
        let first = generator.next_event();
        drop(body_file);
        self.running = Some(Running {
            generator,
            _server: server,
        });
        match first {
            GeneratorEvent::Line {
                line: StreamLine::Started { .. },
                ..
            } => {}
            GeneratorEvent::Closed => {
                let reason = self.generator_ended();
                return Err(self.prepare_error(reason));
            }
            other => {
                return Err(self.prepare_error(format!(
                    "the load generator began with {other:?} instead of saying it had started"
                )))
            }
        }
        // Warm-up under load: the server's batches, the connections and the allocator
        // reach their steady state. At least one request must be answered.
        let until = Instant::now() + warmup;
        let mut warm_up = OutcomeCounts::default();
        while warm_up.n_ok() == 0 || Instant::now() < until {
            let (_, completion) = self.next_completion().map_err(|r| self.prepare_error(r))?;
            warm_up.add(completion.outcome);
            if warm_up.n_ok() == 0 && warm_up.n_failed() >= failures::WINDOW as u64 {
                return Err(
                    self.prepare_error(format!("no warm-up request was answered: {warm_up}"))
                );
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Step, WorkloadError> {
        let since = *self.measuring_since.get_or_insert_with(Instant::now);
        loop {
            let (arrived, completion) = self.next_completion().map_err(|r| self.step_error(r))?;
            if arrived < since {
                continue;
            }
            if let Err(counts) = self.recent.record(completion.outcome) {
                return Err(self.step_error(format!(
                    "{counts}: more than half failing is no latency measurement; lower \
                     `rate` (or raise `connections`, `queue_capacity`), or read this \
                     worker's stderr"
                )));
            }
            self.steps += 1;
            return Ok(if completion.outcome.is_ok() {
                Step {
                    items: 1,
                    latency_s: Some(completion.latency_s),
                    failed: 0,
                }
            } else {
                Step {
                    items: 0,
                    latency_s: None,
                    failed: 1,
                }
            });
        }
    }
}

/// One valid request body for the ready model, in the binary tensor format: f32 inputs
/// uniform in [-1, 1), i64 inputs (token ids) uniform over the model's vocabulary, from a
/// stream seeded by the tenant's seed. Every request sends the same body: a model's cost
/// does not depend on its input's values.
fn request_body(ready: &ReadyModel, seed: u64) -> Option<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ BODY_STREAM);
    let n = ready.spec.item_len();
    let data = match ready.spec.dtype {
        Dtype::F32 => TensorData::F32((0..n).map(|_| rng.random_range(-1.0..1.0)).collect()),
        Dtype::I64 => {
            let limit = ready.index_limit.unwrap_or(DEFAULT_INDEX_LIMIT).max(1);
            TensorData::I64((0..n).map(|_| rng.random_range(0..limit)).collect())
        }
        Dtype::U8 => TensorData::U8((0..n).map(|_| rng.random()).collect()),
    };
    let tensor = Tensor::new(ready.spec.shape.clone(), data)?;
    Some(crate::serve::body::encode_binary(&tensor))
}

/// Writes the body to a temporary file for the generator's `--body`; the file is deleted
/// when the handle is dropped.
fn write_body(body: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("gpushare-serve-body-")
        .tempfile()?;
    file.write_all(body)?;
    file.flush()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{body::decode_binary, InputSpec};
    use crate::workload::{find, Device, Params};

    fn ready(shape: Vec<i64>, dtype: Dtype, index_limit: Option<i64>) -> ReadyModel {
        ReadyModel {
            model: "m".into(),
            spec: InputSpec {
                shape,
                dtype,
                u8_images: false,
            },
            index_limit,
        }
    }

    #[test]
    fn bodies_are_valid_inputs_fixed_by_the_seed() {
        let tokens = ready(vec![16], Dtype::I64, Some(128));
        let body = request_body(&tokens, 3).unwrap();
        assert_eq!(body, request_body(&tokens, 3).unwrap());
        assert_ne!(body, request_body(&tokens, 4).unwrap());
        let tensor = decode_binary(&body, Dtype::I64).unwrap();
        assert_eq!(tensor.shape, vec![16]);
        let TensorData::I64(ids) = tensor.data else {
            panic!("not i64")
        };
        assert!(ids.iter().all(|id| (0..128).contains(id)), "{ids:?}");
        let image = ready(vec![3, 4, 4], Dtype::F32, None);
        let tensor = decode_binary(&request_body(&image, 1).unwrap(), Dtype::F32).unwrap();
        let TensorData::F32(pixels) = tensor.data else {
            panic!("not f32")
        };
        assert_eq!(pixels.len(), 48);
        assert!(pixels.iter().all(|p| (-1.0..1.0).contains(p)));
        assert!(request_body(&ready(vec![-1], Dtype::F32, None), 1).is_none());
    }

    #[test]
    fn registered_for_every_serve_model_counting_requests() {
        let delay = find("serve.delay").unwrap();
        assert_eq!(delay.device, Device::Cpu);
        assert_eq!(delay.item, "requests");
        assert_eq!(delay.availability, crate::workload::Availability::Available);
        for name in ["serve.resnet50", "serve.bert-base"] {
            let info = find(name).unwrap();
            assert_eq!(info.device, Device::Gpu);
            assert_eq!(info.item, "requests");
            assert_eq!(info.availability, super::super::models::AVAILABILITY);
            let cpu = Params(
                [(
                    "device".to_string(),
                    crate::workload::ParamValue::Str("cpu".into()),
                )]
                .into_iter()
                .collect(),
            );
            assert_eq!(info.device_for(&cpu), Device::Cpu);
        }
        // Every model of `gpushare serve` has its tenant.
        use clap::ValueEnum;
        for model in ServeModel::value_variants() {
            let tenant = [
                ServeTenantModel::Delay,
                ServeTenantModel::Resnet50,
                ServeTenantModel::BertBase,
            ]
            .into_iter()
            .find(|t| t.serve_model() == *model);
            assert!(tenant.is_some(), "no serve tenant for {}", model.name());
        }
    }

    #[test]
    fn stepping_before_prepare_is_an_error() {
        let mut tenant = build_delay(&Params::default(), 1).unwrap();
        assert_eq!(
            tenant.step().unwrap_err().to_string(),
            "running step 0 of `serve.delay`: running `serve.delay` before its prepare"
        );
    }
}
