//! `gpushare serve` arguments and the server configuration they become.
//!
//! Owns the flags and their defaults and the mapping from `--model` to a backend factory.
//! Must not start anything.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::backend::{BackendFactory, InferenceBackend};
use super::connections::ConnectionLimits;
use super::delay::DelayBackend;
use super::error::BackendError;
use super::tensor::{n_elements, Dtype};

/// Models `gpushare serve` can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeModel {
    /// CPU fixture that sleeps `--delay` per batch plus `--delay-per-item` per item and
    /// answers each item's sum; for tests and CI, never GPU data.
    #[value(name = "test.delay")]
    TestDelay,
    /// torchvision's ResNet-50 (tch, `torch` feature): one f32 image `[3, 224, 224]` in
    /// (`[3, 32, 32]` with `--tiny`), or u8 raw pixels of that shape, normalized on the
    /// device with ImageNet's mean and standard deviation; its class logits out.
    #[value(name = "resnet50")]
    Resnet50,
    /// BERT-base with a 2-label classification head (tch, `torch` feature): i64 token ids
    /// `[seq_len]` in, the 2 label logits out.
    #[value(name = "bert-base")]
    BertBase,
}

impl ServeModel {
    /// The name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::TestDelay => "test.delay",
            Self::Resnet50 => "resnet50",
            Self::BertBase => "bert-base",
        }
    }
}

/// Numeric precision of a torch model's forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ServePrecision {
    /// Everything in float32.
    #[default]
    Fp32,
    /// float32 parameters, forward pass in bf16 autocast.
    Bf16,
}

/// Arguments of `gpushare serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Model to serve.
    #[arg(long, value_enum, default_value = "test.delay")]
    pub model: ServeModel,
    /// Address to listen on. Loopback by default: the server has no authentication, so
    /// expose it on another interface only on a trusted network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Most requests run together in one batch.
    #[arg(long, default_value_t = 8)]
    pub max_batch_size: usize,
    /// Longest a batch waits for more requests, counted from the moment its first request
    /// was queued (e.g. `2ms`; `0ms` runs whatever is already queued).
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    pub max_queue_delay: Duration,
    /// Requests that may wait for the batcher; a request arriving at a full queue is
    /// answered 503 at once.
    #[arg(long, default_value_t = 1024)]
    pub queue_capacity: usize,
    /// resnet50, bert-base: batches queued on the device at once. 1 finishes each batch
    /// before starting the next (the loop `infer.batch` runs); 2 submits the next batch,
    /// when it is assembled, while the current one runs, so the GPU goes from one to the
    /// next without waiting for the host, and each answer waits for the next batch's
    /// launch. On the project's H200, 2 raised no throughput and BERT-base's P99 by about
    /// half (results/h200/README.md). test.delay runs each batch in full either way.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub max_batches_in_flight: u8,
    /// Largest request body accepted, in bytes; larger bodies are answered 413.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most connections open at once. One beyond it is answered 503 and closed at once;
    /// the first of them is logged on stderr.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// A connection on which no request arrives for this long (since it opened or since
    /// its last response) is closed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// A request's line and headers must be complete this long after its first byte,
    /// or the connection is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// A request's body must be complete this long after its headers, or it is answered
    /// 408 and the connection closed (a body shorter than its Content-Length, a client
    /// that stopped sending).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,
    /// On SIGINT or SIGTERM, in-flight requests get this long to finish; connections
    /// still open then are closed. A second signal exits at once (status 130).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Once the model is loaded and warmed up, write the bound address (`IP:PORT` and a
    /// newline) to this file, for scripts waiting on the server (use `--bind 127.0.0.1:0`
    /// to let the OS pick a free port).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// test.delay: time each batch takes (e.g. `20ms`, `0ms`).
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    pub delay: Duration,
    /// test.delay: additional time per item of a batch.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub delay_per_item: Duration,
    /// test.delay: per-item input shape, comma-separated (e.g. `3,224,224`).
    #[arg(long, default_value = "4", value_delimiter = ',')]
    pub input_shape: Vec<i64>,
    /// test.delay: input element type.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
    /// resnet50, bert-base: device to run on, `cuda` (GPU 0), `cuda:N` or `cpu`.
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// resnet50, bert-base: precision of the forward pass.
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: ServePrecision,
    /// resnet50, bert-base: the model's tiny configuration (32x32 images, 16 tokens by
    /// default, 10 classes or a 128-token vocabulary), for CPU tests; never GPU data.
    #[arg(long)]
    pub tiny: bool,
    /// bert-base: tokens per request. Default 128 (16 with `--tiny`).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// resnet50, bert-base on a GPU: at warm-up, capture the forward pass as CUDA graphs
    /// for batch sizes 1, 2, 4, ... up to --max-batch-size (and that size itself), per
    /// input type, and replay them: one launch per batch instead of one per kernel
    /// (ResNet-50 has 53 convolutions, 53 batch norms and 49 ReLUs, more kernels under
    /// bf16 autocast; not profiled), so the GPU need not wait for the host to launch each
    /// kernel. A batch runs padded up to the next captured size; warm-up runs and captures
    /// only those sizes, and the graphs keep their activation memory (one pool for all). Off by default, as in eager PyTorch; `infer.batch`'s
    /// `cuda_graph = true` is the like-for-like comparison. On the project's H200 at batch
    /// 32 bf16: ResNet-50 1.26x and BERT-base 1.50x the eager server's throughput.
    #[arg(long)]
    pub cuda_graphs: bool,
}

/// The batch sizes `--cuda-graphs` captures for `max_batch_size`: the powers of two below
/// it, then it (at least 1). Every batch from 1 to `max_batch_size` fits one of them with
/// less than half of it padding, in `log2(max_batch_size) + 2` graphs at most.
pub fn cuda_graph_batch_sizes(max_batch_size: usize) -> Vec<usize> {
    let max_batch_size = max_batch_size.max(1);
    std::iter::successors(Some(1_usize), |&size| size.checked_mul(2))
        .take_while(|&size| size < max_batch_size)
        .chain(std::iter::once(max_batch_size))
        .collect()
}

/// How the server listens, queues and batches.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listening address; port 0 lets the OS choose.
    pub bind: SocketAddr,
    /// Most requests in one batch (at least 1).
    pub max_batch_size: usize,
    /// Longest a batch waits for more requests after its first was queued.
    pub max_queue_delay: Duration,
    /// Requests that may wait for the batcher (at least 1).
    pub queue_capacity: usize,
    /// Batches a queueing backend may have on its device at once (1 or 2).
    pub max_batches_in_flight: u8,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest from a request's headers to the end of its body.
    pub body_read_timeout: Duration,
    /// Connection limit, idle and header timeouts, shutdown period.
    pub limits: ConnectionLimits,
    /// Where to write the bound address once ready.
    pub ready_file: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_batch_size: 8,
            max_queue_delay: Duration::from_millis(2),
            queue_capacity: 1024,
            max_batches_in_flight: 1,
            max_body_bytes: 16 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(30),
            limits: ConnectionLimits {
                max_connections: 1024,
                idle_timeout: Duration::from_secs(60),
                header_read_timeout: Duration::from_secs(10),
                shutdown_timeout: Duration::from_secs(10),
            },
            ready_file: None,
        }
    }
}

impl From<&ServeArgs> for ServeConfig {
    fn from(args: &ServeArgs) -> Self {
        Self {
            bind: args.bind,
            max_batch_size: args.max_batch_size,
            max_queue_delay: args.max_queue_delay,
            queue_capacity: args.queue_capacity,
            max_batches_in_flight: args.max_batches_in_flight,
            max_body_bytes: args.max_body_bytes,
            body_read_timeout: args.body_read_timeout,
            limits: ConnectionLimits {
                max_connections: args.max_connections,
                idle_timeout: args.idle_timeout,
                header_read_timeout: args.header_read_timeout,
                shutdown_timeout: args.shutdown_timeout,
            },
            ready_file: args.ready_file.clone(),
        }
    }
}

/// The factory for `--model`; the backend is built later, on the batcher thread.
pub fn backend_factory(args: &ServeArgs) -> BackendFactory {
    match args.model {
        ServeModel::TestDelay => {
            let backend = DelayBackend {
                input_shape: args.input_shape.clone(),
                dtype: args.dtype,
                per_batch: args.delay,
                per_item: args.delay_per_item,
                warm_up: Duration::ZERO,
            };
            Box::new(move || {
                if n_elements(&backend.input_shape).is_none() {
                    return Err(BackendError::msg(format!(
                        "building test.delay: input shape {:?} has a negative or huge dimension",
                        backend.input_shape
                    )));
                }
                Ok(Box::new(backend) as Box<dyn InferenceBackend>)
            })
        }
        ServeModel::Resnet50 | ServeModel::BertBase => torch_factory(args),
    }
}

#[cfg(feature = "torch")]
fn torch_factory(args: &ServeArgs) -> BackendFactory {
    let args = args.clone();
    Box::new(move || {
        super::torch::TorchBackend::new(&args)
            .map(|backend| Box::new(backend) as Box<dyn InferenceBackend>)
    })
}

#[cfg(not(feature = "torch"))]
fn torch_factory(args: &ServeArgs) -> BackendFactory {
    let model = args.model;
    Box::new(move || Err(BackendError::msg(torch_missing_message(model))))
}

/// Why a torch model cannot load in a build without the `torch` feature, and the fix.
#[cfg(not(feature = "torch"))]
fn torch_missing_message(model: ServeModel) -> String {
    format!(
        "building {}: this gpushare was built without the `torch` feature; build it with \
         `scripts/with-libtorch.sh cargo build --release --features torch` \
         (README, \"Torch workloads\")",
        model.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_are_consistent_and_documented() {
        Cli::command().debug_assert();
        for arg in Cli::command().get_arguments() {
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }

    #[test]
    fn cuda_graphs_are_off_by_default_and_a_flag_turns_them_on() {
        assert!(!Cli::parse_from(["serve"]).serve.cuda_graphs);
        assert!(
            Cli::parse_from(["serve", "--cuda-graphs"])
                .serve
                .cuda_graphs
        );
    }

    #[test]
    fn cuda_graph_sizes_are_powers_of_two_then_the_maximum() {
        assert_eq!(cuda_graph_batch_sizes(32), [1, 2, 4, 8, 16, 32]);
        assert_eq!(cuda_graph_batch_sizes(24), [1, 2, 4, 8, 16, 24]);
        assert_eq!(cuda_graph_batch_sizes(1), [1]);
        assert_eq!(cuda_graph_batch_sizes(0), [1]);
    }

    proptest::proptest! {
        /// Every batch the server can form fits a captured size with less than half of it
        /// padding, the sizes rise strictly, and the largest is the maximum batch.
        #[test]
        fn every_batch_fits_a_graph_with_less_than_half_padding(max in 1_usize..5000, n in 1_usize..5000) {
            let sizes = cuda_graph_batch_sizes(max);
            proptest::prop_assert!(sizes.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert_eq!(sizes.last().copied(), Some(max));
            proptest::prop_assert!(sizes.len() <= max.ilog2() as usize + 2);
            let n = 1 + (n - 1) % max;
            let fit = sizes.iter().copied().find(|&size| size >= n);
            proptest::prop_assert!(fit.is_some());
            let fit = fit.unwrap_or(0);
            proptest::prop_assert!(fit - n < fit.div_ceil(2).max(1), "{} rows in a graph of {}", n, fit);
        }
    }

    #[test]
    fn defaults_and_ci_flags_parse() {
        let cli = Cli::parse_from(["serve"]);
        assert_eq!(cli.serve.model, ServeModel::TestDelay);
        assert_eq!(cli.serve.bind, "127.0.0.1:8080".parse().unwrap());
        let cli = Cli::parse_from(["serve", "--model", "test.delay", "--delay", "0"]);
        assert_eq!(cli.serve.delay, Duration::ZERO);
        let config = ServeConfig::from(&cli.serve);
        assert_eq!(config.max_batch_size, 8);
        // The flags' defaults are the library's.
        let defaults = ServeConfig::default();
        assert_eq!(config.limits, defaults.limits);
        assert_eq!(config.body_read_timeout, defaults.body_read_timeout);
        assert_eq!(config.max_body_bytes, defaults.max_body_bytes);
        assert!(Cli::try_parse_from(["serve", "--model", "resnet9000"]).is_err());
        let cli = Cli::parse_from([
            "serve",
            "--model",
            "bert-base",
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "--tiny",
            "--seq-len",
            "32",
        ]);
        assert_eq!(cli.serve.model, ServeModel::BertBase);
        assert_eq!(cli.serve.precision, ServePrecision::Bf16);
        assert_eq!(cli.serve.seq_len, Some(32));
        assert!(cli.serve.tiny);
        let cli = Cli::parse_from(["serve", "--model", "resnet50"]);
        assert_eq!(cli.serve.device, "cuda");
        assert_eq!(cli.serve.precision, ServePrecision::Fp32);
    }

    #[cfg(not(feature = "torch"))]
    #[test]
    fn torch_models_without_the_feature_say_how_to_build_with_it() {
        for model in ["resnet50", "bert-base"] {
            let cli = Cli::parse_from(["serve", "--model", model]);
            let err = backend_factory(&cli.serve)().err().unwrap();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("building {model}: ")),
                "{message}"
            );
            assert!(message.contains("--features torch"), "{message}");
            assert!(message.contains("Torch workloads"), "{message}");
        }
    }

    #[test]
    fn a_negative_test_delay_shape_fails_to_load() {
        let cli = Cli::parse_from(["serve", "--input-shape", "3,-2"]);
        let err = backend_factory(&cli.serve)().err().unwrap();
        assert_eq!(
            err.to_string(),
            "building test.delay: input shape [3, -2] has a negative or huge dimension"
        );
    }
}
