//! The inference server over real HTTP on 127.0.0.1: every refusal path, overload,
//! readiness, metrics, batching and graceful shutdown. Backends are CPU fixtures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpushare::serve::body::{
    decode_binary, decode_json, decode_request, encode_binary, encode_json_request, BodyFormat,
};
use gpushare::serve::{
    BackendError, Batch, DelayBackend, Dtype, InferenceBackend, InputSpec, ServeConfig, ServeError,
    Server, Tensor, TensorData,
};
use hyper::{Method, StatusCode};
use proptest::prelude::*;

use crate::support::{get, json_item, post_binary, post_json, request, serve_args, TestServer};

fn quick_config() -> ServeConfig {
    ServeConfig {
        max_queue_delay: Duration::ZERO,
        ..ServeConfig::default()
    }
}

fn shaped_backend() -> DelayBackend {
    DelayBackend {
        input_shape: vec![2, 3],
        ..DelayBackend::new(0, Duration::ZERO)
    }
}

#[tokio::test]
async fn valid_json_and_binary_requests_are_answered() {
    let server = TestServer::start_ready(quick_config(), shaped_backend()).await;
    let reply = post_json(
        server.addr,
        r#"{"inputs": {"shape": [2, 3], "dtype": "f32", "data": [1, 2, 3, 4, 5, 6.5]}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["outputs"]["data"], serde_json::json!([21.5]));
    assert_eq!(json["outputs"]["shape"], serde_json::json!([1]));
    assert_eq!(json["batch_size"], serde_json::json!(1));

    let tensor = Tensor::new(vec![1, 2, 3], TensorData::F32(vec![1.0; 6])).unwrap();
    let reply = post_binary(server.addr, &tensor).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let spec = InputSpec {
        shape: vec![1],
        dtype: Dtype::F32,
        u8_images: false,
    };
    let output = decode_request(BodyFormat::Binary, &reply.body, &spec).unwrap();
    assert_eq!(output.data, TensorData::F32(vec![6.0]));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_bad_input_path_has_its_status_and_message() {
    let config = ServeConfig {
        max_body_bytes: 1024,
        ..quick_config()
    };
    let server = TestServer::start_ready(config, shaped_backend()).await;
    let addr = server.addr;

    let reply = post_json(addr, "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .starts_with("malformed request body: invalid JSON: key must be a string"),
        "{}",
        reply.error()
    );

    let reply = post_json(
        addr,
        r#"{"inputs": {"shape": [2, 3], "dtype": "f32", "data": [1]}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "malformed request body: shape [2, 3] needs 6 elements but data has 1"
    );

    let reply = post_json(addr, &json_item(6, 1.0)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "wrong shape: expected [2, 3] (or [1, 2, 3]), got [6]"
    );

    let reply = post_json(
        addr,
        r#"{"inputs": {"shape": [2, 3], "dtype": "i64", "data": [1, 2, 3, 4, 5, 6]}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error(), "wrong dtype: expected f32, got i64");

    let reply = post_json(addr, &json_item(1000, 1.0)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let declared = json_item(1000, 1.0).len();
    assert_eq!(
        reply.error(),
        format!("request body is {declared} bytes but the limit is 1024 bytes (--max-body-bytes)")
    );

    let reply = request(
        addr,
        Method::POST,
        "/v1/infer",
        &[("content-type", "text/plain")],
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        reply.error(),
        "unsupported content type \"text/plain\"; expected application/json or application/octet-stream"
    );

    let reply = request(
        addr,
        Method::POST,
        "/v1/infer",
        &[("content-type", "application/octet-stream")],
        b"GSTN".to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "malformed request body: binary body is 4 bytes, shorter than its 8-byte header"
    );

    let reply = get(addr, "/v2/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.error(),
        "no route GET /v2/nothing; routes: POST /v1/infer, GET /healthz, GET /readyz, GET /metrics"
    );

    let reply = get(addr, "/v1/infer").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "method GET is not allowed on /v1/infer");
    assert_eq!(reply.headers["allow"], "POST");

    let reply = request(addr, Method::DELETE, "/healthz", &[], Vec::new()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    // After all of that, the server still answers.
    let good = r#"{"inputs": {"shape": [2, 3], "dtype": "f32", "data": [0, 0, 0, 0, 0, 1]}}"#;
    assert_eq!(post_json(addr, good).await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let config = ServeConfig {
        max_body_bytes: 100,
        ..quick_config()
    };
    let server = TestServer::start_ready(config, DelayBackend::new(4, Duration::ZERO)).await;
    // A raw request without Content-Length, so the limit is enforced while reading.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let chunk = "x".repeat(200);
    let raw = format!(
        "POST /v1/infer HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("request body is more than 100 bytes but the limit is 100 bytes"),
        "{response}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_queue_answers_503_and_the_server_keeps_serving() {
    let config = ServeConfig {
        max_batch_size: 1,
        queue_capacity: 2,
        ..quick_config()
    };
    // Each batch takes a second, so all ten requests arrive while the first one runs, even
    // on a loaded 2-core machine.
    let backend = DelayBackend::new(4, Duration::from_millis(1000));
    let server = TestServer::start_ready(config, backend).await;
    let addr = server.addr;
    let replies = futures_join_all(
        (0..10)
            .map(|_| async move { post_json(addr, &json_item(4, 1.0)).await })
            .collect(),
    )
    .await;
    let n_ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let overloaded: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(n_ok + overloaded.len(), 10, "only 200 and 503 expected");
    // The two queue places are always accepted; a third and a fourth only if the batcher
    // thread took requests off the queue before the last ones arrived, which on a loaded
    // 2-core machine it may not have done yet (seen in CI: exactly 2).
    assert!((2..=4).contains(&n_ok), "{n_ok} accepted");
    assert_eq!(
        overloaded[0].error(),
        "server is overloaded: the request queue is full (2 waiting); retry later"
    );
    assert_eq!(overloaded[0].headers["retry-after"], "1");
    assert_eq!(
        post_json(addr, &json_item(4, 1.0)).await.status,
        StatusCode::OK
    );
    server.stop().await.unwrap();
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_request() {
    let backend = DelayBackend::new(4, Duration::from_millis(400));
    let mut server = TestServer::start_ready(quick_config(), backend).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { post_json(addr, &json_item(4, 2.0)).await });
    // Let the request reach the backend, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.signal_shutdown();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["outputs"]["data"], serde_json::json!([8.0]));
    server.join().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn readyz_turns_200_only_after_warm_up() {
    let backend = DelayBackend {
        warm_up: Duration::from_millis(600),
        ..DelayBackend::new(4, Duration::ZERO)
    };
    let server = TestServer::start(quick_config(), backend).await;
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "loading");
    assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);
    let reply = post_json(server.addr, &json_item(4, 1.0)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.error(),
        "model is not ready yet (loading or warming up); see /readyz"
    );
    server.wait_ready().await;
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ready", "model": "test.delay", "input_shape": [4], "dtype": "f32"})
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_batches_and_queue() {
    let server =
        TestServer::start_ready(quick_config(), DelayBackend::new(4, Duration::ZERO)).await;
    for _ in 0..3 {
        assert_eq!(
            post_json(server.addr, &json_item(4, 1.0)).await.status,
            StatusCode::OK
        );
    }
    let bad = post_json(server.addr, &json_item(5, 1.0)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text();
    for line in [
        "# TYPE gpushare_serve_requests_total counter",
        "gpushare_serve_requests_total{code=\"200\"} 3",
        "gpushare_serve_requests_total{code=\"422\"} 1",
        "# TYPE gpushare_serve_request_duration_seconds histogram",
        "gpushare_serve_request_duration_seconds_count 4",
        "# TYPE gpushare_serve_batch_size histogram",
        "gpushare_serve_batch_size_bucket{le=\"1\"} 3",
        "gpushare_serve_batch_size_count 3",
        "gpushare_serve_batch_duration_seconds_count 3",
        "# TYPE gpushare_serve_queue_depth gauge",
        "gpushare_serve_queue_depth 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_are_batched() {
    let config = ServeConfig {
        max_batch_size: 8,
        max_queue_delay: Duration::from_millis(30),
        ..ServeConfig::default()
    };
    let backend = DelayBackend::new(4, Duration::from_millis(50));
    let server = TestServer::start_ready(config, backend).await;
    let addr = server.addr;
    let replies = futures_join_all(
        (0..16)
            .map(|i| async move { post_json(addr, &json_item(4, i as f32)).await })
            .collect(),
    )
    .await;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, StatusCode::OK);
        // Each request gets its own answer back, not a neighbour's.
        assert_eq!(
            reply.json()["outputs"]["data"],
            serde_json::json!([4.0 * i as f64])
        );
    }
    let largest = replies
        .iter()
        .map(|r| r.json()["batch_size"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(largest >= 4, "largest batch {largest}");
    let text = get(addr, "/metrics").await.text();
    let n_batches = metric_value(&text, "gpushare_serve_batch_size_count");
    assert!(n_batches <= 8.0, "{n_batches} batches for 16 requests");
    assert_eq!(metric_value(&text, "gpushare_serve_batch_size_sum"), 16.0);
    server.stop().await.unwrap();
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn a_lone_request_waits_at_most_the_queue_delay() {
    let config = ServeConfig {
        max_batch_size: 8,
        max_queue_delay: Duration::from_millis(150),
        ..ServeConfig::default()
    };
    let server = TestServer::start_ready(config, DelayBackend::new(4, Duration::ZERO)).await;
    let started = Instant::now();
    let reply = post_json(server.addr, &json_item(4, 1.0)).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["batch_size"], 1);
    assert!(
        waited >= Duration::from_millis(150),
        "answered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1000),
        "answered after {waited:?}"
    );
    server.stop().await.unwrap();

    // With a full batch the server does not wait for the delay.
    let config = ServeConfig {
        max_batch_size: 1,
        max_queue_delay: Duration::from_secs(5),
        ..ServeConfig::default()
    };
    let server = TestServer::start_ready(config, DelayBackend::new(4, Duration::ZERO)).await;
    let started = Instant::now();
    assert_eq!(
        post_json(server.addr, &json_item(4, 1.0)).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    server.stop().await.unwrap();
}

struct FailingBackend {
    calls: Arc<AtomicUsize>,
}

impl InferenceBackend for FailingBackend {
    fn name(&self) -> &str {
        "test.failing"
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
    fn infer(&mut self, _: Batch) -> Result<Vec<Tensor>, BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call == 0 {
            Err(BackendError::msg("running a batch: device lost"))
        } else {
            panic!("backend bug")
        }
    }
}

#[tokio::test]
async fn backend_errors_and_panics_are_500_and_the_server_survives() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start_ready(
        quick_config(),
        FailingBackend {
            calls: Arc::clone(&calls),
        },
    )
    .await;
    let reply = post_json(server.addr, &json_item(1, 1.0)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.error(),
        "inference failed: running a batch: device lost"
    );
    let reply = post_json(server.addr, &json_item(1, 1.0)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.error(),
        "inference failed: backend test.failing panicked: backend bug"
    );
    assert_eq!(get(server.addr, "/healthz").await.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_backend_that_cannot_load_stops_the_server_with_its_error() {
    let config = ServeConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    let server = Server::bind(
        config,
        "resnet50",
        Box::new(|| Err(BackendError::msg("opening weights resnet50.pt"))),
    )
    .await
    .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server.run(std::future::pending()))
        .await
        .expect("a failed load must stop the server");
    let err = result.unwrap_err();
    assert!(matches!(err, ServeError::LoadModel { .. }), "{err:?}");
    assert_eq!(err.to_string(), "loading model resnet50");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "opening weights resnet50.pt"
    );
}

#[tokio::test]
async fn serve_writes_the_ready_file_and_stops_on_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let ready_file = dir.path().join("ready");
    let args = serve_args([
        "--bind",
        "127.0.0.1:0",
        "--ready-file",
        ready_file.to_str().unwrap(),
        "--delay",
        "0ms",
        "--input-shape",
        "3,2",
        "--dtype",
        "i64",
    ]);
    let (stop, signal) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gpushare::serve::serve(args, async move {
        let _ = signal.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file) {
            break text.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let reply = get(addr, "/readyz").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = post_json(
        addr,
        r#"{"inputs": {"shape": [3, 2], "dtype": "i64", "data": [1, 2, 3, 4, 5, 6]}}"#,
    )
    .await;
    assert_eq!(reply.json()["outputs"]["data"], serde_json::json!([21.0]));
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_zero_batch_size_is_a_config_error() {
    let config = ServeConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        max_batch_size: 0,
        ..ServeConfig::default()
    };
    let backend = DelayBackend::new(1, Duration::ZERO);
    let result = Server::bind(
        config,
        "test.delay",
        Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>)),
    )
    .await;
    let err = result.err().expect("batch size 0 is refused");
    assert!(matches!(err, ServeError::Config { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "configuring the server: max batch size (0) and queue capacity (1024) must be at least 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_in_flight_request_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let ready_file = dir.path().join("ready");
    let args = serve_args([
        "--bind",
        "127.0.0.1:0",
        "--ready-file",
        ready_file.to_str().unwrap(),
        "--delay",
        "400ms",
    ]);
    let serving = tokio::spawn(gpushare::serve::serve(
        args,
        gpushare::serve::shutdown_signal(),
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr: std::net::SocketAddr = loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file) {
            break text.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let in_flight = tokio::spawn(async move { post_json(addr, &json_item(4, 1.0)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The server's signal handler is installed before it reports ready, so SIGTERM reaches
    // tokio instead of ending this test process.
    // SAFETY: kill(2) on our own pid with a handled signal.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("serve must return after SIGTERM")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn binding_a_taken_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ServeConfig {
        bind: taken.local_addr().unwrap(),
        ..ServeConfig::default()
    };
    let backend = DelayBackend::new(1, Duration::ZERO);
    let result = Server::bind(
        config,
        "test.delay",
        Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>)),
    )
    .await;
    let err = result.err().expect("port is taken");
    assert_eq!(
        err.to_string(),
        format!(
            "binding the inference server to {}",
            taken.local_addr().unwrap()
        )
    );
}

fn spec_f32() -> InputSpec {
    InputSpec {
        shape: vec![2, 3],
        dtype: Dtype::F32,
        u8_images: false,
    }
}

/// A refusal must be one of the body statuses, never a 5xx.
fn assert_refusal(err: &gpushare::serve::RequestError) {
    let status = err.status();
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} for {err}"
    );
}

/// The bits of a tensor's elements, so NaNs compare equal to themselves.
fn element_bits(data: &TensorData) -> Vec<u64> {
    match data {
        TensorData::F32(values) => values.iter().map(|v| u64::from(v.to_bits())).collect(),
        TensorData::I64(values) => values.iter().map(|v| *v as u64).collect(),
        TensorData::U8(values) => values.iter().map(|v| u64::from(*v)).collect(),
    }
}

/// Any tensor the binary format can carry: rank 0 to 4, small dimensions, every f32 bit
/// pattern (NaNs and infinities too), any i64 or any u8.
fn arbitrary_tensor() -> impl Strategy<Value = Tensor> {
    prop::collection::vec(0i64..4, 0..=4).prop_flat_map(|shape| {
        let n = shape.iter().product::<i64>() as usize;
        let f32s = prop::collection::vec(any::<u32>().prop_map(f32::from_bits), n)
            .prop_map(TensorData::F32);
        let i64s = prop::collection::vec(any::<i64>(), n).prop_map(TensorData::I64);
        let u8s = prop::collection::vec(any::<u8>(), n).prop_map(TensorData::U8);
        (Just(shape), prop_oneof![f32s, i64s, u8s])
            .prop_map(|(shape, data)| Tensor::new(shape, data).unwrap())
    })
}

/// One JSON element and the f32 it must decode to, if it is a valid f32 element.
fn json_element() -> impl Strategy<Value = (String, Option<f32>)> {
    prop_oneof![
        any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| (format!("{v:?}"), Some(v))),
        (-1_000_000i64..1_000_000).prop_map(|v| (v.to_string(), Some(v as f32))),
        Just(("1e39".to_owned(), None)),
        Just(("null".to_owned(), None)),
        Just(("\"1\"".to_owned(), None)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_what_decodes_is_what_they_say(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Err(err) = decode_request(BodyFormat::Json, &bytes, &spec_f32()) {
            assert_refusal(&err);
        }
        let mut framed = b"GSTN\x01".to_vec();
        framed.extend_from_slice(&bytes);
        for body in [&bytes, &framed] {
            match decode_binary(body, Dtype::F32) {
                // The format is canonical: a body that decodes is the encoding of what it
                // decoded to, byte for byte.
                Ok(tensor) => prop_assert_eq!(&encode_binary(&tensor), body),
                Err(err) => assert_refusal(&err),
            }
            if let Err(err) = decode_request(BodyFormat::Binary, body, &spec_f32()) {
                assert_refusal(&err);
            }
        }
    }

    #[test]
    fn a_binary_tensor_round_trips_exactly(tensor in arbitrary_tensor()) {
        let body = encode_binary(&tensor);
        let decoded = decode_binary(&body, tensor.dtype).unwrap();
        prop_assert_eq!(&decoded.shape, &tensor.shape);
        prop_assert_eq!(decoded.dtype, tensor.dtype);
        prop_assert_eq!(element_bits(&decoded.data), element_bits(&tensor.data));
        // Through the spec check too: one item of its own shape comes back unchanged.
        let spec = InputSpec { shape: tensor.shape.clone(), dtype: tensor.dtype, u8_images: false };
        let checked = decode_request(BodyFormat::Binary, &body, &spec).unwrap();
        prop_assert_eq!(element_bits(&checked.data), element_bits(&tensor.data));
    }

    #[test]
    fn a_json_tensor_round_trips_exactly(
        tensor in arbitrary_tensor().prop_filter("JSON numbers are finite", |t| match &t.data {
            TensorData::F32(values) => values.iter().all(|v| v.is_finite()),
            TensorData::I64(_) | TensorData::U8(_) => true,
        }),
    ) {
        let decoded = decode_json(&encode_json_request(&tensor), tensor.dtype).unwrap();
        prop_assert_eq!(&decoded.shape, &tensor.shape);
        prop_assert_eq!(decoded.dtype, tensor.dtype);
        prop_assert_eq!(element_bits(&decoded.data), element_bits(&tensor.data));
    }

    #[test]
    fn structured_json_is_accepted_exactly_when_it_fits(
        shape in prop::collection::vec(-2i64..5, 0..4),
        dtype in prop::sample::select(vec!["f32", "i64", "u8", "f16", ""]),
        elements in prop::collection::vec(json_element(), 0..12),
    ) {
        let data: Vec<&str> = elements.iter().map(|(text, _)| text.as_str()).collect();
        let body = format!(
            r#"{{"inputs": {{"shape": {shape:?}, "dtype": "{dtype}", "data": [{}]}}}}"#,
            data.join(",")
        );
        let expected: Option<Vec<f32>> = elements.iter().map(|(_, value)| *value).collect();
        let fits = dtype == "f32"
            && (shape == [2, 3] || shape == [1, 2, 3])
            && elements.len() == 6
            && expected.is_some();
        match decode_request(BodyFormat::Json, body.as_bytes(), &spec_f32()) {
            Ok(tensor) => {
                prop_assert!(fits, "accepted {}", body);
                prop_assert_eq!(&tensor.shape, &vec![2, 3]);
                prop_assert_eq!(tensor.data, TensorData::F32(expected.unwrap_or_default()));
            }
            Err(err) => {
                prop_assert!(!fits, "refused {}: {}", body, err);
                assert_refusal(&err);
            }
        }
    }

    #[test]
    fn u8_items_are_taken_exactly_by_image_specs(
        shape in prop::collection::vec(0i64..4, 0..=4),
        pixel in any::<u8>(),
        dtype in prop::sample::select(vec![Dtype::F32, Dtype::I64, Dtype::U8]),
        u8_images in any::<bool>(),
    ) {
        let n = shape.iter().product::<i64>() as usize;
        let pixels = Tensor::new(shape.clone(), TensorData::U8(vec![pixel; n])).unwrap();
        let spec = InputSpec { shape, dtype, u8_images };
        for format in [BodyFormat::Binary, BodyFormat::Json] {
            let body = match format {
                BodyFormat::Binary => encode_binary(&pixels),
                BodyFormat::Json => encode_json_request(&pixels),
            };
            match decode_request(format, &body, &spec) {
                Ok(decoded) => {
                    prop_assert!(spec.accepts_dtype(Dtype::U8));
                    prop_assert_eq!(&decoded, &pixels);
                }
                Err(err) => {
                    prop_assert!(!(dtype == Dtype::U8 || u8_images), "refused: {}", err);
                    prop_assert_eq!(
                        err.to_string(),
                        format!("wrong dtype: expected {}, got u8", spec.dtype_names())
                    );
                }
            }
        }
    }

    #[test]
    fn mutated_binary_bodies_decode_to_what_they_encode_or_are_refused(
        data in prop::collection::vec(any::<f32>(), 6),
        flips in prop::collection::vec((0usize..80, any::<u8>()), 0..4),
        cut in 0usize..90,
    ) {
        let tensor = Tensor::new(vec![2, 3], TensorData::F32(data)).unwrap();
        let mut body = encode_binary(&tensor);
        for (idx, byte) in flips {
            if let Some(slot) = body.get_mut(idx) {
                *slot = byte;
            }
        }
        body.truncate(cut.max(1));
        match decode_binary(&body, Dtype::F32) {
            Ok(decoded) => prop_assert_eq!(encode_binary(&decoded), body.clone()),
            Err(err) => assert_refusal(&err),
        }
        if let Err(err) = decode_request(BodyFormat::Binary, &body, &spec_f32()) {
            assert_refusal(&err);
        }
    }
}
