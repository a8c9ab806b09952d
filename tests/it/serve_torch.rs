//! `gpushare serve --model resnet50|bert-base` over real HTTP on 127.0.0.1, with the tiny
//! configurations on the CPU (`torch` feature): answers of the right size for JSON and
//! binary bodies in concurrent batches, 422 for wrong shapes and out-of-vocabulary token
//! ids, and /readyz only after warm-up. GPU figures come from the lead's GPU runs.

use std::net::SocketAddr;
use std::time::Duration;

use gpushare::serve::body::{decode_request, encode_binary, BodyFormat};
use gpushare::serve::{
    backend_factory, Dtype, InputSpec, ServeArgs, ServeConfig, ServeError, Server, Tensor,
    TensorData,
};
use hyper::{Method, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{get, post_binary, post_json, request, serve_args};

/// A server for `gpushare serve` flags, built through `backend_factory` as the CLI does.
struct TorchServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TorchServer {
    async fn start(flags: &[&str]) -> Self {
        let args = serve_args(
            ["--bind", "127.0.0.1:0", "--device", "cpu", "--tiny"]
                .into_iter()
                .chain(flags.iter().copied()),
        );
        Self::from_args(args).await
    }

    async fn from_args(args: ServeArgs) -> Self {
        let factory = backend_factory(&args);
        let server = Server::bind(ServeConfig::from(&args), args.model.name(), factory)
            .await
            .unwrap();
        let addr = server.local_addr();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = signal.await;
        }));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// Polls /readyz until 200; returns how many polls answered 503 before that.
    async fn wait_ready(&self) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut n_loading = 0;
        loop {
            let reply = get(self.addr, "/readyz").await;
            if reply.status == StatusCode::OK {
                return n_loading;
            }
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(reply.json()["status"], "loading");
            n_loading += 1;
            assert!(
                tokio::time::Instant::now() < deadline,
                "the torch model never got ready"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("server did not stop within 60 s")
            .unwrap()
            .unwrap();
    }
}

fn json_body(shape: &[i64], dtype: &str, data: &[String]) -> String {
    format!(
        r#"{{"inputs": {{"shape": {shape:?}, "dtype": "{dtype}", "data": [{}]}}}}"#,
        data.join(",")
    )
}

/// A deterministic image `[3, 32, 32]` differing with `seed`.
fn image(seed: usize) -> Vec<f32> {
    (0..3 * 32 * 32)
        .map(|i| (((i * 7 + seed * 131) % 97) as f32 / 48.0) - 1.0)
        .collect()
}

fn image_json(seed: usize) -> String {
    let data: Vec<String> = image(seed).iter().map(f32::to_string).collect();
    json_body(&[3, 32, 32], "f32", &data)
}

fn logits(reply: &crate::support::Reply) -> Vec<f64> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    json["outputs"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no outputs in {json}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resnet50_answers_json_and_binary_batches_after_warm_up() {
    // A batch size of 32 makes the CPU warm-up (every size 1..32, then 32 three times)
    // long enough to be seen as 503 before /readyz turns 200.
    let server = TorchServer::start(&[
        "--model",
        "resnet50",
        "--max-batch-size",
        "32",
        "--max-queue-delay",
        "300ms",
    ])
    .await;
    let addr = server.addr;
    let reply = post_json(addr, &image_json(0)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert!(
        server.wait_ready().await > 0,
        "/readyz was 200 before warm-up ended"
    );
    let ready = get(addr, "/readyz").await.json();
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "model": "resnet50", "input_shape": [3, 32, 32], "dtype": "f32"})
    );

    // Each image alone, then all together: the same logits, each to its own request.
    let mut alone = Vec::new();
    for seed in 0..4 {
        let reply = post_json(addr, &image_json(seed)).await;
        assert_eq!(reply.json()["batch_size"], 1);
        let values = logits(&reply);
        assert_eq!(values.len(), 10, "tiny ResNet has 10 classes");
        alone.push(values);
    }
    let handles: Vec<_> = (0..4)
        .map(|seed| tokio::spawn(async move { post_json(addr, &image_json(seed)).await }))
        .collect();
    let mut largest_batch = 0;
    for (seed, handle) in handles.into_iter().enumerate() {
        let reply = handle.await.unwrap();
        largest_batch = largest_batch.max(reply.json()["batch_size"].as_u64().unwrap());
        assert_close(&logits(&reply), &alone[seed]);
    }
    assert!(
        largest_batch >= 2,
        "4 concurrent requests never shared a batch"
    );

    let tensor = Tensor::new(vec![1, 3, 32, 32], TensorData::F32(image(2))).unwrap();
    let reply = post_binary(addr, &tensor).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let spec = InputSpec {
        shape: vec![10],
        dtype: Dtype::F32,
        u8_images: false,
    };
    let output = decode_request(BodyFormat::Binary, &reply.body, &spec).unwrap();
    let TensorData::F32(values) = output.data else {
        panic!("f32 logits expected");
    };
    let values: Vec<f64> = values.into_iter().map(f64::from).collect();
    assert_close(&values, &alone[2]);

    let small: Vec<String> = vec!["0.5".to_owned(); 3 * 16 * 16];
    let reply = post_json(addr, &json_body(&[3, 16, 16], "f32", &small)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "wrong shape: expected [3, 32, 32] (or [1, 3, 32, 32]), got [3, 16, 16]"
    );
    server.stop().await;
}

/// Deterministic raw pixels `[3, 32, 32]` differing with `seed`, and the f32 image they
/// normalize to (ImageNet mean and standard deviation per channel).
fn pixels(seed: usize) -> (Vec<u8>, Vec<f32>) {
    let pixels: Vec<u8> = (0..3 * 32 * 32)
        .map(|i| ((i * 13 + seed * 71) % 256) as u8)
        .collect();
    let (mean, std) = ([0.485_f32, 0.456, 0.406], [0.229_f32, 0.224, 0.225]);
    let floats = pixels
        .iter()
        .enumerate()
        .map(|(i, &p)| (f32::from(p) / 255.0 - mean[i / 1024]) / std[i / 1024])
        .collect();
    (pixels, floats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resnet50_takes_u8_images_next_to_f32_ones_in_the_same_batches() {
    let server = TorchServer::start(&[
        "--model",
        "resnet50",
        "--max-batch-size",
        "8",
        "--max-queue-delay",
        "100ms",
    ])
    .await;
    server.wait_ready().await;
    let addr = server.addr;
    let binary = |data: TensorData| Tensor::new(vec![3, 32, 32], data).unwrap();
    let mut alone = Vec::new();
    for seed in 0..6 {
        let (_, floats) = pixels(seed);
        let reply = post_binary(addr, &binary(TensorData::F32(floats))).await;
        alone.push(decode_logits(&reply));
    }
    // u8 and f32 requests at once: batches of one kind and mixed ones, each answer its own.
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let (raw, floats) = pixels(i % 6);
            let tensor = if i % 2 == 0 {
                binary(TensorData::U8(raw))
            } else {
                binary(TensorData::F32(floats))
            };
            tokio::spawn(async move { post_binary(addr, &tensor).await })
        })
        .collect();
    let mut largest_batch = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        let reply = handle.await.unwrap();
        let values = decode_logits(&reply);
        assert_close(&values, &alone[i % 6]);
        let batch_size: u64 = reply.headers["x-batch-size"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        largest_batch = largest_batch.max(batch_size);
    }
    assert!(
        largest_batch >= 2,
        "12 concurrent requests never shared a batch"
    );

    let reply = post_json(
        addr,
        &json_body(&[3, 32, 32], "u8", &vec!["300".to_owned(); 3072]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "malformed request body: data[0] = 300 is not a u8 integer (0..=255)"
    );
    let ids = Tensor::new(vec![3, 32, 32], TensorData::I64(vec![1; 3072])).unwrap();
    let reply = post_binary(addr, &ids).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error(), "wrong dtype: expected f32 or u8, got i64");
    let (raw, _) = pixels(0);
    let reply = post_json(
        addr,
        &json_body(
            &[3, 32, 32],
            "u8",
            &raw.iter().map(u8::to_string).collect::<Vec<_>>(),
        ),
    )
    .await;
    assert_close(&logits(&reply), &alone[0]);
    server.stop().await;
}

fn decode_logits(reply: &crate::support::Reply) -> Vec<f64> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let spec = InputSpec {
        shape: vec![10],
        dtype: Dtype::F32,
        u8_images: false,
    };
    let output = decode_request(BodyFormat::Binary, &reply.body, &spec).unwrap();
    let TensorData::F32(values) = output.data else {
        panic!("f32 logits expected");
    };
    values.into_iter().map(f64::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bert_base_answers_two_logits_and_refuses_unknown_token_ids() {
    let server = TorchServer::start(&[
        "--model",
        "bert-base",
        "--seq-len",
        "8",
        "--precision",
        "bf16",
        "--max-batch-size",
        "4",
        "--max-queue-delay",
        "300ms",
    ])
    .await;
    let addr = server.addr;
    server.wait_ready().await;
    let ready = get(addr, "/readyz").await.json();
    assert_eq!(ready["input_shape"], serde_json::json!([8]));
    assert_eq!(ready["dtype"], "i64");

    let tokens = |seed: i64| -> Vec<String> {
        (0..8)
            .map(|i| ((i * 13 + seed * 5) % 128).to_string())
            .collect()
    };
    let handles: Vec<_> = (0..4)
        .map(|seed| {
            let body = json_body(&[8], "i64", &tokens(seed));
            tokio::spawn(async move { post_json(addr, &body).await })
        })
        .collect();
    let mut largest_batch = 0;
    for handle in handles {
        let reply = handle.await.unwrap();
        largest_batch = largest_batch.max(reply.json()["batch_size"].as_u64().unwrap());
        assert_eq!(logits(&reply).len(), 2);
    }
    assert!(
        largest_batch >= 2,
        "4 concurrent requests never shared a batch"
    );

    let ids: Vec<i64> = (0..8).collect();
    let tensor = Tensor::new(vec![8], TensorData::I64(ids)).unwrap();
    let reply = request(
        addr,
        Method::POST,
        "/v1/infer",
        &[("content-type", "application/octet-stream")],
        encode_binary(&tensor),
    )
    .await;
    assert_eq!(logits(&reply).len(), 2);

    let mut bad = tokens(0);
    bad[3] = "128".to_owned();
    let reply = post_json(addr, &json_body(&[8], "i64", &bad)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "element 3 is 128, outside the valid ids 0..128"
    );
    bad[3] = "-1".to_owned();
    let reply = post_json(addr, &json_body(&[8], "i64", &bad)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = post_json(addr, &json_body(&[1, 9], "i64", &vec!["1".to_owned(); 9])).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.error(),
        "wrong shape: expected [8] (or [1, 8]), got [1, 9]"
    );
    let floats: Vec<String> = vec!["1.5".to_owned(); 8];
    let reply = post_json(addr, &json_body(&[8], "f32", &floats)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The server still answers after the refusals.
    assert_eq!(
        post_json(addr, &json_body(&[8], "i64", &tokens(1)))
            .await
            .status,
        StatusCode::OK
    );
    server.stop().await;
}

/// What `gpushare serve` with `flags` (bound to a free loopback port) fails with while
/// it loads its model, and that error with its causes, as the CLI prints it.
async fn load_failure(flags: &[&str]) -> (ServeError, String) {
    let args = serve_args(
        ["--bind", "127.0.0.1:0"]
            .into_iter()
            .chain(flags.iter().copied()),
    );
    let err = gpushare::serve::serve(args, std::future::pending())
        .await
        .unwrap_err();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    (err, message)
}

#[tokio::test]
async fn a_torch_model_on_a_missing_gpu_stops_the_server_with_its_error() {
    let (err, message) =
        load_failure(&["--model", "bert-base", "--tiny", "--device", "cuda:99"]).await;
    assert!(
        matches!(err, ServeError::LoadModel { ref model, .. } if model == "bert-base"),
        "{err:?}"
    );
    assert!(
        message.contains("use cuda:99 for bert-base: libtorch sees"),
        "{message}"
    );
}

/// On the GPU machine: the full-size models on `cuda` in fp32 and bf16, 8 concurrent
/// binary requests each, answered with 1000 (ResNet-50) or 2 (BERT) finite logits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gpu_serve_full_size_models_on_cuda() {
    assert!(tch::Cuda::is_available(), "libtorch sees no CUDA GPU");
    for precision in ["fp32", "bf16"] {
        for (model, item_shape, n_outputs) in [
            ("resnet50", vec![3_i64, 224, 224], 1000),
            ("bert-base", vec![128], 2),
        ] {
            let args = serve_args([
                "--bind",
                "127.0.0.1:0",
                "--model",
                model,
                "--precision",
                precision,
                "--max-batch-size",
                "8",
                "--max-queue-delay",
                "20ms",
            ]);
            let server = TorchServer::from_args(args).await;
            let addr = server.addr;
            server.wait_ready().await;
            let n_elements: i64 = item_shape.iter().product();
            let handles: Vec<_> = (0..8_i64)
                .map(|seed| {
                    let data = if model == "resnet50" {
                        TensorData::F32(
                            (0..n_elements)
                                .map(|i| ((i + seed * 31) % 255) as f32 / 255.0)
                                .collect(),
                        )
                    } else {
                        TensorData::I64((0..n_elements).map(|i| (i * 7 + seed) % 30522).collect())
                    };
                    let body = encode_binary(&Tensor::new(item_shape.clone(), data).unwrap());
                    tokio::spawn(async move {
                        request(
                            addr,
                            Method::POST,
                            "/v1/infer",
                            &[("content-type", "application/octet-stream")],
                            body,
                        )
                        .await
                    })
                })
                .collect();
            for handle in handles {
                let values = logits(&handle.await.unwrap());
                assert_eq!(values.len(), n_outputs, "{model} {precision}");
                assert!(values.iter().all(|v| v.is_finite()), "{model} {precision}");
            }
            server.stop().await;
        }
    }
}

/// On the GPU machine: two batches queued on the device at once (the server's default)
/// answer what each answers alone, so overlapping batch k+1 with batch k reuses no buffer
/// early and waits for the right batch.
#[test]
fn gpu_two_batches_in_flight_answer_what_each_answers_alone() {
    use gpushare::serve::{InferenceBackend, Submitted, TorchBackend};
    assert!(tch::Cuda::is_available(), "libtorch sees no CUDA GPU");
    let args = serve_args(["--model", "resnet50", "--max-batch-size", "8"]);
    let mut backend = TorchBackend::new(&args).unwrap();
    backend.warm_up().unwrap();
    let mut assembler = backend.assembler().unwrap();
    let batches: Vec<Vec<Tensor>> = (0..3_u32)
        .map(|batch| {
            (0..8_u32)
                .map(|item| {
                    let pixels = (0..3 * 224 * 224_u32)
                        .map(|i| ((i * 13 + item * 101 + batch * 7) % 256) as u8)
                        .collect();
                    Tensor::new(vec![3, 224, 224], TensorData::U8(pixels)).unwrap()
                })
                .collect()
        })
        .collect();
    let mut assemble = |items: &[Tensor]| assembler.assemble(&items.iter().collect::<Vec<_>>());
    let alone: Vec<Vec<Tensor>> = batches
        .iter()
        .map(|items| backend.run(assemble(items).unwrap()).unwrap())
        .collect();
    let mut running = Vec::new();
    for items in &batches {
        match backend.submit(assemble(items).unwrap()).unwrap() {
            Submitted::Running(batch) => running.push(batch),
            Submitted::Done(_) => panic!("a CUDA batch was not left running"),
        }
    }
    for (batch, expected) in running.into_iter().zip(&alone) {
        let outputs = backend.finish(batch).unwrap();
        assert_eq!(outputs.len(), 8);
        for (output, expected) in outputs.iter().zip(expected) {
            let (TensorData::F32(got), TensorData::F32(want)) = (&output.data, &expected.data)
            else {
                panic!("logits are f32");
            };
            for (x, y) in got.iter().zip(want) {
                assert!((x - y).abs() <= 1e-3 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
    }
}

/// The server refuses `--cuda-graphs` off a GPU when it loads the model, with the fix.
#[tokio::test]
async fn cuda_graphs_on_the_cpu_stop_the_server_with_the_fix() {
    let (_, message) = load_failure(&[
        "--model",
        "resnet50",
        "--tiny",
        "--device",
        "cpu",
        "--cuda-graphs",
    ])
    .await;
    assert!(
        message.contains("--cuda-graphs needs a CUDA device")
            && message.contains("use --device cuda"),
        "{message}"
    );
}

/// On the GPU machine: with `--cuda-graphs`, batches of every size up to the maximum
/// (padded to a captured size) answer what the eager server answers, for uint8 and f32
/// images and token ids, in fp32 and bf16, one batch or two in flight.
#[test]
fn gpu_cuda_graphs_answer_what_eager_answers() {
    use gpushare::serve::{InferenceBackend, Submitted, TorchBackend};
    assert!(tch::Cuda::is_available(), "libtorch sees no CUDA GPU");
    let item = |model: &str, dtype: &str, seed: u32| -> Tensor {
        match (model, dtype) {
            ("bert-base", _) => Tensor::new(
                vec![128],
                TensorData::I64(
                    (0..128)
                        .map(|i| i64::from((i * 7 + seed * 13) % 30522))
                        .collect(),
                ),
            ),
            (_, "u8") => Tensor::new(
                vec![3, 224, 224],
                TensorData::U8(
                    (0..3 * 224 * 224_u32)
                        .map(|i| ((i * 13 + seed * 101) % 256) as u8)
                        .collect(),
                ),
            ),
            _ => Tensor::new(
                vec![3, 224, 224],
                TensorData::F32(
                    (0..3 * 224 * 224_u32)
                        .map(|i| ((i * 13 + seed * 101) % 256) as f32 / 255.0 - 0.5)
                        .collect(),
                ),
            ),
        }
        .unwrap()
    };
    for precision in ["fp32", "bf16"] {
        for (model, dtypes) in [
            ("resnet50", &["u8", "f32"][..]),
            ("bert-base", &["i64"][..]),
        ] {
            let flags = [
                "--model",
                model,
                "--precision",
                precision,
                "--max-batch-size",
                "8",
            ];
            let mut eager = TorchBackend::new(&serve_args(flags)).unwrap();
            eager.warm_up().unwrap();
            let mut graphed =
                TorchBackend::new(&serve_args(flags.into_iter().chain(["--cuda-graphs"]))).unwrap();
            graphed.warm_up().unwrap();
            let mut eager_assembler = eager.assembler().unwrap();
            let mut graphed_assembler = graphed.assembler().unwrap();
            // 1, 2, 4 and 8 are captured sizes; 3, 5, 6 and 7 run padded.
            let cases = dtypes
                .iter()
                .flat_map(|&dtype| (1..=8_u32).map(move |n| (dtype, n)));
            for (dtype, n_items) in cases {
                let items: Vec<Tensor> =
                    (0..n_items).map(|seed| item(model, dtype, seed)).collect();
                let refs: Vec<&Tensor> = items.iter().collect();
                let want = eager.run(eager_assembler.assemble(&refs).unwrap()).unwrap();
                // Two in flight: the second batch's copy into the graph's inputs must wait
                // for the first replay, which the stream order guarantees.
                let first = graphed
                    .submit(graphed_assembler.assemble(&refs).unwrap())
                    .unwrap();
                let second = graphed
                    .submit(graphed_assembler.assemble(&refs).unwrap())
                    .unwrap();
                for submitted in [first, second] {
                    let Submitted::Running(running) = submitted else {
                        panic!("a CUDA batch was not left running");
                    };
                    let got = graphed.finish(running).unwrap();
                    assert_eq!(got.len(), n_items as usize, "{model} {dtype} {precision}");
                    for (got, want) in got.iter().zip(&want) {
                        let (TensorData::F32(got), TensorData::F32(want)) = (&got.data, &want.data)
                        else {
                            panic!("logits are f32");
                        };
                        // A padded batch may run other cuDNN algorithms than the eager one
                        // of its own size: equal up to the precision's rounding.
                        let scale = want.iter().fold(1.0_f32, |m, v| m.max(v.abs()));
                        let tolerance = if precision == "bf16" { 3e-2 } else { 1e-3 } * scale;
                        for (x, y) in got.iter().zip(want) {
                            assert!(
                                (x - y).abs() <= tolerance,
                                "{model} {dtype} {precision} batch {n_items}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }
}
