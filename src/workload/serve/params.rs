//! The parameters of `serve.<model>` tenants and their validation into a
//! [`ServeTenantSpec`]: the load (rate, arrivals, connections), the server (batching,
//! queue) and the model's own (the delay fixture's service time, a torch model's device
//! and precision).

use crate::limits::workload as limits;
use std::time::Duration;

use super::{ServeTenantModel, WorkloadError};
use crate::serve::{ServeConfig, ServeModel, ServePrecision};
use crate::workload::{ParamInfo, ParamKind, Params};

const RATE: ParamInfo = ParamInfo {
    name: "rate",
    kind: ParamKind::Float(limits::RATE_PER_S),
    default: "100.0",
    doc: "requests per second the tenant's load generator sends, above 0 and at most \
          100000, open loop: on a schedule that never waits for answers; latency counts from \
          each request's intended send time",
};
const POISSON: ParamInfo = ParamInfo {
    name: "poisson",
    kind: ParamKind::Bool,
    default: "false",
    doc: "Poisson arrivals (exponential gaps from the tenant's seed) instead of evenly spaced ones",
};
const CONNECTIONS: ParamInfo = ParamInfo {
    name: "connections",
    kind: ParamKind::Int(limits::CONNECTIONS),
    default: "64",
    doc: "keep-alive connections of the generator: the most requests in flight; a request \
          due while all are busy waits (counted in its latency) and is dropped (failed) after 1 s",
};
const MAX_BATCH_SIZE: ParamInfo = ParamInfo {
    name: "max_batch_size",
    kind: ParamKind::Int(limits::MAX_BATCH_SIZE),
    default: "8",
    doc: "most requests the server runs together in one batch",
};
const MAX_QUEUE_DELAY_MS: ParamInfo = ParamInfo {
    name: "max_queue_delay_ms",
    kind: ParamKind::Float(limits::MILLIS),
    default: "2.0",
    doc: "longest a batch waits for more requests after its first was queued, in \
          milliseconds; 0 runs whatever is queued",
};
const QUEUE_CAPACITY: ParamInfo = ParamInfo {
    name: "queue_capacity",
    kind: ParamKind::Int(limits::QUEUE_CAPACITY),
    default: "1024",
    doc: "requests that may wait for the model; one arriving at a full queue is answered 503 \
          (a failed request)",
};
const DELAY_MS: ParamInfo = ParamInfo {
    name: "delay_ms",
    kind: ParamKind::Float(limits::MILLIS),
    default: "5.0",
    doc: "time each batch takes, in milliseconds (a sleep)",
};
const DELAY_PER_ITEM_MS: ParamInfo = ParamInfo {
    name: "delay_per_item_ms",
    kind: ParamKind::Float(limits::MILLIS),
    default: "0.0",
    doc: "additional time per request in a batch, in milliseconds",
};
const WARM_UP_MS: ParamInfo = ParamInfo {
    name: "warm_up_ms",
    kind: ParamKind::Float(limits::MILLIS),
    default: "0.0",
    doc: "time the backend's warm-up takes before the server is ready, in milliseconds",
};
const DEVICE: ParamInfo = ParamInfo {
    name: "device",
    kind: ParamKind::Choice(&["cuda", "cpu"]),
    default: "\"cuda\"",
    doc: "cuda (the first visible GPU) or cpu (for tests with tiny = true)",
};
const PRECISION: ParamInfo = ParamInfo {
    name: "precision",
    kind: ParamKind::Choice(&["fp32", "bf16"]),
    default: "\"fp32\"",
    doc: "fp32, or the forward pass in bf16 autocast",
};
const TINY: ParamInfo = ParamInfo {
    name: "tiny",
    kind: ParamKind::Bool,
    default: "false",
    doc: "the model's tiny configuration (32x32 images, 16 tokens), for CPU tests; never a \
          benchmark",
};
const SEQ_LEN: ParamInfo = ParamInfo {
    name: "seq_len",
    kind: ParamKind::Int(limits::SEQ_LEN),
    default: "128",
    doc: "tokens per request (16 with tiny = true)",
};

const CUDA_GRAPHS: ParamInfo = ParamInfo {
    name: "cuda_graphs",
    kind: ParamKind::Bool,
    default: "false",
    doc: "capture the forward pass as CUDA graphs at warm-up and replay them (`gpushare serve \
          --cuda-graphs`); device = \"cuda\" only",
};

/// `serve.delay`'s parameters.
pub const DELAY_PARAMS: &[ParamInfo] = &[
    RATE,
    POISSON,
    CONNECTIONS,
    MAX_BATCH_SIZE,
    MAX_QUEUE_DELAY_MS,
    QUEUE_CAPACITY,
    DELAY_MS,
    DELAY_PER_ITEM_MS,
    WARM_UP_MS,
];

/// `serve.resnet50`'s parameters.
pub const RESNET50_PARAMS: &[ParamInfo] = &[
    RATE,
    POISSON,
    CONNECTIONS,
    MAX_BATCH_SIZE,
    MAX_QUEUE_DELAY_MS,
    QUEUE_CAPACITY,
    DEVICE,
    PRECISION,
    TINY,
    CUDA_GRAPHS,
];

/// `serve.bert-base`'s parameters.
pub const BERT_BASE_PARAMS: &[ParamInfo] = &[
    RATE,
    POISSON,
    CONNECTIONS,
    MAX_BATCH_SIZE,
    MAX_QUEUE_DELAY_MS,
    QUEUE_CAPACITY,
    DEVICE,
    PRECISION,
    TINY,
    SEQ_LEN,
    CUDA_GRAPHS,
];

/// The most generator connections: each is a socket and a task, and more than this many
/// requests in flight is no longer a model of one service's clients.
const MAX_CONNECTIONS: i64 = 4096;

/// A `serve.<model>` tenant, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeTenantSpec {
    pub model: ServeTenantModel,
    /// Requests per second the generator sends.
    pub rate_per_s: f64,
    /// Poisson arrivals instead of evenly spaced ones.
    pub poisson: bool,
    /// Generator connections.
    pub connections: usize,
    pub max_batch_size: usize,
    pub max_queue_delay: Duration,
    pub queue_capacity: usize,
    pub backend: BackendSpec,
}

/// The model's own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendSpec {
    /// The `test.delay` CPU fixture.
    Delay {
        per_batch: Duration,
        per_item: Duration,
        warm_up: Duration,
    },
    /// A torch model as `gpushare serve` loads it.
    Torch {
        /// `cuda` or `cpu`.
        device: String,
        precision: ServePrecision,
        tiny: bool,
        /// bert-base only: tokens per request; `None` for the model's default.
        seq_len: Option<usize>,
        /// Capture the forward pass as CUDA graphs (`serve --cuda-graphs`).
        cuda_graphs: bool,
    },
}

impl ServeTenantSpec {
    /// Reads and checks the values of parameters whose names and types the registry has
    /// already checked.
    pub fn from_params(model: ServeTenantModel, params: &Params) -> Result<Self, WorkloadError> {
        let check = Check {
            workload: model.workload_name(),
            params,
        };
        // Only the torch models take these; test.delay's parameters leave them out.
        let device = params.str_or("device", "cuda");
        let cuda_graphs = params.bool_or("cuda_graphs", false);
        if cuda_graphs && device == "cpu" {
            return Err(check.value_error(
                &CUDA_GRAPHS,
                "CUDA graphs need device = \"cuda\"; this tenant has device = \"cpu\"".to_owned(),
            ));
        }
        let backend = match model.serve_model() {
            ServeModel::TestDelay => BackendSpec::Delay {
                per_batch: check.millis(&DELAY_MS)?,
                per_item: check.millis(&DELAY_PER_ITEM_MS)?,
                warm_up: check.millis(&WARM_UP_MS)?,
            },
            ServeModel::Resnet50 | ServeModel::BertBase => BackendSpec::Torch {
                device: device.to_owned(),
                precision: match params.str_or("precision", "fp32") {
                    "bf16" => ServePrecision::Bf16,
                    _ => ServePrecision::Fp32,
                },
                tiny: params.bool_or("tiny", false),
                seq_len: match params.0.get("seq_len") {
                    None => None,
                    Some(_) => Some(check.count(&SEQ_LEN, i64::MAX)?),
                },
                cuda_graphs,
            },
        };
        let rate_per_s = params.f64_or("rate", 100.0);
        // Checked here too for callers that skip the registry's check (the generator
        // streams every request back, so its rate is bounded like `load --stream`'s).
        limits::RATE_PER_S
            .check(rate_per_s)
            .map_err(|reason| check.value_error(&RATE, reason))?;
        Ok(Self {
            model,
            rate_per_s,
            poisson: params.bool_or("poisson", false),
            connections: check.count(&CONNECTIONS, MAX_CONNECTIONS)?,
            max_batch_size: check.count(&MAX_BATCH_SIZE, i64::MAX)?,
            max_queue_delay: check.millis(&MAX_QUEUE_DELAY_MS)?,
            queue_capacity: check.count(&QUEUE_CAPACITY, i64::MAX)?,
            backend,
        })
    }

    /// The server's configuration: loopback, an OS-chosen port, this tenant's batching,
    /// room for every connection of its generator.
    pub fn server_config(&self) -> ServeConfig {
        let defaults = ServeConfig::default();
        ServeConfig {
            bind: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            max_batch_size: self.max_batch_size,
            max_queue_delay: self.max_queue_delay,
            queue_capacity: self.queue_capacity,
            limits: crate::serve::ConnectionLimits {
                max_connections: defaults.limits.max_connections.max(self.connections + 16),
                ..defaults.limits
            },
            ..defaults
        }
    }
}

/// Value checks that name the parameter and the workload.
struct Check<'a> {
    workload: &'static str,
    params: &'a Params,
}

impl Check<'_> {
    fn value_error(&self, param: &ParamInfo, reason: String) -> WorkloadError {
        WorkloadError::ParamValue {
            workload: self.workload.to_owned(),
            param: param.name.to_owned(),
            reason,
        }
    }

    /// A positive integer up to `max`, or the parameter's default.
    fn count(&self, param: &ParamInfo, max: i64) -> Result<usize, WorkloadError> {
        let default = param.default.parse().unwrap_or(1);
        let value = self.params.i64_or(param.name, default);
        if value < 1 || value > max {
            let range = if max == i64::MAX {
                "a positive integer".to_owned()
            } else {
                format!("an integer from 1 to {max}")
            };
            return Err(self.value_error(param, format!("must be {range}, got {value}")));
        }
        usize::try_from(value)
            .map_err(|_| self.value_error(param, format!("{value} does not fit this machine")))
    }

    /// A non-negative number of milliseconds, or the parameter's default.
    fn millis(&self, param: &ParamInfo) -> Result<Duration, WorkloadError> {
        let default = param.default.parse().unwrap_or(0.0);
        let ms = self.params.f64_or(param.name, default);
        Duration::try_from_secs_f64(ms / 1e3).map_err(|_| {
            self.value_error(
                param,
                format!("must be a non-negative number of milliseconds, got {ms}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ParamValue;

    fn params(pairs: &[(&str, ParamValue)]) -> Params {
        Params::from_pairs(pairs)
    }

    fn delay(pairs: &[(&str, ParamValue)]) -> Result<ServeTenantSpec, WorkloadError> {
        ServeTenantSpec::from_params(ServeTenantModel::Delay, &params(pairs))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let spec = delay(&[]).unwrap();
        assert_eq!(spec.rate_per_s, 100.0);
        assert!(!spec.poisson);
        assert_eq!(spec.connections, 64);
        assert_eq!(spec.max_batch_size, 8);
        assert_eq!(spec.max_queue_delay, Duration::from_millis(2));
        assert_eq!(spec.queue_capacity, 1024);
        assert_eq!(
            spec.backend,
            BackendSpec::Delay {
                per_batch: Duration::from_millis(5),
                per_item: Duration::ZERO,
                warm_up: Duration::ZERO,
            }
        );
        let config = spec.server_config();
        assert_eq!(config.bind.to_string(), "127.0.0.1:0");
        assert_eq!(config.max_batch_size, 8);
        // Every default is written as a scenario would write it, so it parses as its kind.
        for info in DELAY_PARAMS
            .iter()
            .chain(BERT_BASE_PARAMS)
            .chain(RESNET50_PARAMS)
        {
            let ok = match info.kind {
                ParamKind::Int(_) => info.default.parse::<i64>().is_ok(),
                ParamKind::Float(_) => info.default.parse::<f64>().is_ok(),
                ParamKind::Bool => info.default.parse::<bool>().is_ok(),
                ParamKind::Choice(choices) => choices.contains(&info.default.trim_matches('"')),
            };
            assert!(ok, "default of {} is {:?}", info.name, info.default);
        }
    }

    #[test]
    fn torch_models_take_device_precision_and_seq_len() {
        let spec = ServeTenantSpec::from_params(
            ServeTenantModel::BertBase,
            &params(&[
                ("device", ParamValue::Str("cpu".into())),
                ("precision", ParamValue::Str("bf16".into())),
                ("tiny", ParamValue::Bool(true)),
                ("seq_len", ParamValue::Int(8)),
                ("rate", ParamValue::Int(200)),
                ("poisson", ParamValue::Bool(true)),
            ]),
        )
        .unwrap();
        assert_eq!(spec.rate_per_s, 200.0);
        assert!(spec.poisson);
        assert_eq!(
            spec.backend,
            BackendSpec::Torch {
                device: "cpu".into(),
                precision: ServePrecision::Bf16,
                tiny: true,
                seq_len: Some(8),
                cuda_graphs: false,
            }
        );
        let resnet =
            ServeTenantSpec::from_params(ServeTenantModel::Resnet50, &Params::default()).unwrap();
        assert_eq!(
            resnet.backend,
            BackendSpec::Torch {
                device: "cuda".into(),
                precision: ServePrecision::Fp32,
                tiny: false,
                seq_len: None,
                cuda_graphs: false,
            }
        );
        let graphed = ServeTenantSpec::from_params(
            ServeTenantModel::Resnet50,
            &params(&[("cuda_graphs", ParamValue::Bool(true))]),
        )
        .unwrap();
        assert!(matches!(
            graphed.backend,
            BackendSpec::Torch {
                cuda_graphs: true,
                ..
            }
        ));
    }

    #[test]
    fn cuda_graphs_on_the_cpu_are_refused_with_the_fix() {
        let err = ServeTenantSpec::from_params(
            ServeTenantModel::BertBase,
            &params(&[
                ("cuda_graphs", ParamValue::Bool(true)),
                ("device", ParamValue::Str("cpu".into())),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`cuda_graphs`"), "{err}");
        assert!(err.contains("device = \"cuda\""), "{err}");
    }

    #[test]
    fn bad_values_name_the_parameter_and_what_is_allowed() {
        let err = |pairs: &[(&str, ParamValue)]| delay(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("rate", ParamValue::Float(0.0))]),
            "reading parameter `rate` of `serve.delay`: must be a number of requests per second \
             above 0 and at most 100000, got 0"
        );
        for rate in [1e9, 100_000.5, f64::INFINITY, f64::NAN, -5.0] {
            assert_eq!(
                err(&[("rate", ParamValue::Float(rate))]),
                format!(
                    "reading parameter `rate` of `serve.delay`: must be a number of requests \
                     per second above 0 and at most 100000, got {rate}"
                )
            );
        }
        assert_eq!(
            delay(&[("rate", ParamValue::Float(100_000.0))])
                .unwrap()
                .rate_per_s,
            100_000.0
        );
        assert_eq!(
            err(&[("connections", ParamValue::Int(0))]),
            "reading parameter `connections` of `serve.delay`: must be an integer from 1 to \
             4096, got 0"
        );
        assert_eq!(
            err(&[("max_batch_size", ParamValue::Int(-3))]),
            "reading parameter `max_batch_size` of `serve.delay`: must be a positive integer, \
             got -3"
        );
        assert_eq!(
            err(&[("queue_capacity", ParamValue::Int(0))]),
            "reading parameter `queue_capacity` of `serve.delay`: must be a positive integer, \
             got 0"
        );
        assert_eq!(
            err(&[("max_queue_delay_ms", ParamValue::Float(-1.0))]),
            "reading parameter `max_queue_delay_ms` of `serve.delay`: must be a non-negative \
             number of milliseconds, got -1"
        );
        assert_eq!(
            err(&[("delay_ms", ParamValue::Float(f64::NAN))]),
            "reading parameter `delay_ms` of `serve.delay`: must be a non-negative number of \
             milliseconds, got NaN"
        );
        let seq_len = ServeTenantSpec::from_params(
            ServeTenantModel::BertBase,
            &params(&[("seq_len", ParamValue::Int(0))]),
        )
        .unwrap_err();
        assert_eq!(
            seq_len.to_string(),
            "reading parameter `seq_len` of `serve.bert-base`: must be a positive integer, got 0"
        );
    }
}
