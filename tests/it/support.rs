//! Helpers shared by the serve and load tests: a server on an OS-chosen loopback port and a
//! one-request HTTP client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gpushare::serve::body::encode_binary;
use gpushare::serve::{InferenceBackend, ServeArgs, ServeConfig, ServeError, Server, Tensor};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and the means to stop it.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// Binds 127.0.0.1:0 and starts serving `backend`; does not wait for warm-up.
    pub async fn start(config: ServeConfig, backend: impl InferenceBackend) -> Self {
        let config = ServeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = Server::bind(
            config,
            "test",
            Box::new(move || Ok(Box::new(backend) as Box<dyn InferenceBackend>)),
        )
        .await
        .unwrap();
        let addr = server.local_addr();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = signal.await;
        }));
        Self {
            addr,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Starts and waits until /readyz answers 200.
    pub async fn start_ready(config: ServeConfig, backend: impl InferenceBackend) -> Self {
        let server = Self::start(config, backend).await;
        server.wait_ready().await;
        server
    }

    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let reply = get(self.addr, "/readyz").await;
            if reply.status == StatusCode::OK {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server never got ready"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers graceful shutdown and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server did not stop within 10 s")
            .unwrap()
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn join(self) -> Result<(), ServeError> {
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop within 10 s")
            .unwrap()
    }
}

/// A response, body as text (lossy for binary bodies).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path, &[], Vec::new()).await
}

pub async fn post_json(addr: SocketAddr, body: &str) -> Reply {
    request(
        addr,
        Method::POST,
        "/v1/infer",
        &[("content-type", "application/json")],
        body.as_bytes().to_vec(),
    )
    .await
}

/// One request in the compact binary body format, asking for a binary answer too.
pub async fn post_binary(addr: SocketAddr, tensor: &Tensor) -> Reply {
    request(
        addr,
        Method::POST,
        "/v1/infer",
        &[
            ("content-type", "application/octet-stream"),
            ("accept", "application/octet-stream"),
        ],
        encode_binary(tensor),
    )
    .await
}

/// `gpushare serve`'s arguments from its command-line flags, as the CLI parses them.
pub fn serve_args<'a>(flags: impl IntoIterator<Item = &'a str>) -> ServeArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    Cli::parse_from(std::iter::once("serve").chain(flags)).serve
}

/// A JSON body for a `[len]` f32 item filled with `value`.
pub fn json_item(len: usize, value: f32) -> String {
    let data = vec![value.to_string(); len].join(",");
    format!(r#"{{"inputs": {{"shape": [{len}], "dtype": "f32", "data": [{data}]}}}}"#)
}
