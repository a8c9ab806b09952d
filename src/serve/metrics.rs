//! The server's Prometheus metrics and their text exposition for `GET /metrics`.
//!
//! Uses the `prometheus-client` crate (the Prometheus project's Rust client) and its
//! Prometheus text format 0.0.4 encoder. Metric names start with `gpushare_serve_`:
//! - `requests_total{code}`: `POST /v1/infer` requests answered, by HTTP status code;
//! - `request_duration_seconds`: histogram of time from request arrival to response;
//! - `batch_size`: histogram of items per batch run by the backend;
//! - `batch_duration_seconds`: histogram of backend time per batch (the model thread:
//!   copy to the device, forward pass, results back);
//! - `batch_assembly_seconds`: histogram of host time to assemble a batch (the assembler
//!   thread: gathering the requests' inputs into staging memory), which overlaps the
//!   previous batch's backend time;
//! - `queue_depth`: gauge of requests waiting for the batcher.
//!
//! Owns counting only; must not block (every update is a few atomic operations).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Content type of the `/metrics` response.
pub const METRICS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

/// Every metric the server exports, shared by handlers and the batcher.
pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabels, Counter>,
    request_duration: Histogram,
    batch_size: Histogram,
    batch_duration: Histogram,
    batch_assembly: Histogram,
    queue_depth: Gauge,
}

impl Metrics {
    /// Registers the metrics; batch-size buckets are powers of two up to `max_batch_size`.
    pub fn new(max_batch_size: usize) -> Self {
        let mut registry = Registry::with_prefix("gpushare_serve");
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "requests",
            "POST /v1/infer requests answered, by HTTP status code",
            requests.clone(),
        );
        // 0.25 ms to about 16 s: covers a delay fixture and a loaded GPU alike.
        let request_duration = Histogram::new(exponential_buckets(0.000_25, 2.0, 17));
        registry.register(
            "request_duration_seconds",
            "Time from request arrival to response, POST /v1/infer",
            request_duration.clone(),
        );
        let batch_size = Histogram::new(batch_size_buckets(max_batch_size));
        registry.register(
            "batch_size",
            "Items per batch run by the backend",
            batch_size.clone(),
        );
        let batch_duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register(
            "batch_duration_seconds",
            "Backend time per batch, from its submission to its outputs (with two batches in flight, it includes waiting behind the batch before it)",
            batch_duration.clone(),
        );
        let batch_assembly = Histogram::new(exponential_buckets(0.000_01, 2.0, 20));
        registry.register(
            "batch_assembly_seconds",
            "Host time to assemble a batch (gathering its inputs), overlapping the previous batch's backend time",
            batch_assembly.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting for the batcher",
            queue_depth.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            batch_size,
            batch_duration,
            batch_assembly,
            queue_depth,
        }
    }

    /// Counts one answered inference request.
    pub fn observe_request(&self, code: u16, elapsed: Duration) {
        self.requests.get_or_create(&CodeLabels { code }).inc();
        self.request_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one batch run by the backend.
    pub fn observe_batch(&self, n_items: usize, elapsed: Duration) {
        self.batch_size.observe(n_items as f64);
        self.batch_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one batch assembled on the host.
    pub fn observe_assembly(&self, elapsed: Duration) {
        self.batch_assembly.observe(elapsed.as_secs_f64());
    }

    /// A request entered the queue.
    pub fn queue_push(&self) {
        self.queue_depth.inc();
    }

    /// The batcher took `n` requests off the queue.
    pub fn queue_pop(&self, n: usize) {
        self.queue_depth
            .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Renders the Prometheus text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn batch_size_buckets(max_batch_size: usize) -> Vec<f64> {
    let mut buckets: Vec<f64> = std::iter::successors(Some(1usize), |b| b.checked_mul(2))
        .take_while(|&b| b < max_batch_size)
        .map(|b| b as f64)
        .collect();
    buckets.push(max_batch_size.max(1) as f64);
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_buckets_end_at_the_maximum() {
        assert_eq!(batch_size_buckets(1), vec![1.0]);
        assert_eq!(batch_size_buckets(8), vec![1.0, 2.0, 4.0, 8.0]);
        assert_eq!(batch_size_buckets(12), vec![1.0, 2.0, 4.0, 8.0, 12.0]);
    }

    #[test]
    fn exposition_has_every_metric() {
        let metrics = Metrics::new(4);
        metrics.observe_request(200, Duration::from_millis(3));
        metrics.observe_request(503, Duration::from_millis(1));
        metrics.observe_batch(3, Duration::from_millis(2));
        metrics.observe_assembly(Duration::from_micros(300));
        metrics.queue_push();
        let text = metrics.encode().unwrap();
        for line in [
            "gpushare_serve_requests_total{code=\"200\"} 1",
            "gpushare_serve_requests_total{code=\"503\"} 1",
            "gpushare_serve_batch_size_bucket{le=\"2\"} 0",
            "gpushare_serve_batch_size_bucket{le=\"4\"} 1",
            "gpushare_serve_batch_size_sum 3.0",
            "gpushare_serve_queue_depth 1",
            "gpushare_serve_request_duration_seconds_count 2",
            "gpushare_serve_batch_assembly_seconds_count 1",
            "gpushare_serve_batch_assembly_seconds_sum 0.0003",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
