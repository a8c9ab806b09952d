//! Inference server: `gpushare serve`.
//!
//! An HTTP server (axum on tokio) that answers `POST /v1/infer` with a model's output,
//! batching concurrent requests dynamically. Requests flow:
//! handler (decode, check, 400/413/415/422) -> bounded queue (503 when full) -> assembler
//! thread (batch up to `max_batch_size` or `max_queue_delay`, gather the inputs) -> model
//! thread (run the backend on batch k while batch k+1 is gathered) -> reply.
//! `GET /healthz` is liveness, `GET /readyz` is 200 only once the model is loaded and
//! warmed up, `GET /metrics` is Prometheus text.
//!
//! Owns the HTTP surface, batching and the backend seam ([`InferenceBackend`]); the model
//! code behind the seam lives with each backend. Must not run model code on the async
//! runtime and must not panic on any request.

mod backend;
mod batcher;
pub mod body;
mod config;
mod connections;
mod delay;
mod error;
mod metrics;
mod server;
mod tensor;
#[cfg(feature = "torch")]
mod torch;

pub use backend::{
    AssembledBatch, AssembledInput, BackendFactory, Batch, BatchAssembler, Concatenate,
    InferenceBackend, Submitted,
};
pub(crate) use batcher::ReadyModel;
pub use config::{
    backend_factory, cuda_graph_batch_sizes, ServeArgs, ServeConfig, ServeModel, ServePrecision,
};
pub use connections::ConnectionLimits;
pub use delay::DelayBackend;
pub use error::{BackendError, RequestError, ServeError};
pub use metrics::METRICS_CONTENT_TYPE;
pub use server::{shutdown_signal, Server};
pub use tensor::{n_elements, Dtype, InputSpec, Tensor, TensorData};
#[cfg(feature = "torch")]
pub use torch::TorchBackend;

use std::future::Future;

/// Runs `gpushare serve` until `shutdown` completes (pass [`shutdown_signal`] for
/// SIGINT/SIGTERM), finishing in-flight requests before returning.
pub async fn serve(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let factory = backend_factory(&args);
    let server = Server::bind(ServeConfig::from(&args), args.model.name(), factory).await?;
    server.run(shutdown).await
}
