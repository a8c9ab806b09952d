//! The Prometheus endpoint: `GET /metrics` on an address of the user's, answered with
//! text a caller renders at each scrape. `gpushare monitor --prometheus` and `gpushare run
//! --prometheus` both serve through it.
//!
//! It runs on a thread and runtime of its own, so a scrape never waits on the runner's
//! runtime and the runner never waits on a scrape: the caller's render function is all
//! the two share. Binding is the only fallible step, done before this returns, so a bad
//! address or a port in use is reported before anything else starts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::MonitorError;

/// Content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What the endpoint answers: called once per scrape, on the exporter's thread.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `render()` on `http://addr/metrics` until the process ends; returns the
/// address bound (with the port the OS chose for port 0).
pub fn serve(addr: SocketAddr, render: Render) -> Result<SocketAddr, MonitorError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(MonitorError::ExporterRuntime)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|source| MonitorError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MonitorError::Bind { addr, source })?;
    std::thread::Builder::new()
        .name("gpushare-exporter".into())
        .spawn(move || {
            let router = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let text = render();
                    async move { ([("content-type", CONTENT_TYPE)], text) }
                }),
            );
            // The server ends with the process.
            let _ = runtime.block_on(async { axum::serve(listener, router).await });
        })
        .map_err(|source| MonitorError::Spawn { source })?;
    Ok(bound)
}

/// Parses `--prometheus ADDR`: `IP:PORT` (`127.0.0.1:9400`, `[::1]:9400`, `0.0.0.0:9400`)
/// or `localhost:PORT`; port 0 asks the OS for a free one.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let advice = "write IP:PORT, e.g. 127.0.0.1:9400 (port 0 picks a free port)";
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("`{text}` resolves to no address; {advice}")),
        Err(_) => Err(format!("`{text}` is not an address to listen on; {advice}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_ip_and_a_port() {
        assert_eq!(
            parse_addr("127.0.0.1:9400"),
            Ok("127.0.0.1:9400".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert_eq!(
            parse_addr("9400").unwrap_err(),
            "`9400` is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:9400 \
             (port 0 picks a free port)"
        );
        assert!(parse_addr("127.0.0.1:http").is_err());
        assert!(parse_addr("127.0.0.1:70000").is_err());
    }

    #[test]
    fn a_port_in_use_is_an_error_that_says_so() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve(addr, Arc::new(String::new)).unwrap_err();
        let text = crate::errors::error_chain(&err);
        assert!(
            text.starts_with(&format!("serving Prometheus text on {addr}: ")),
            "{text}"
        );
        assert!(
            text.ends_with(
                "; another process listens there: choose another port, or port 0 for a free one"
            ),
            "{text}"
        );
    }

    #[test]
    fn port_zero_gets_a_port_and_answers_scrapes() {
        use std::io::{Read, Write};
        let bound = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|| "up 1\n".to_string()),
        )
        .unwrap();
        assert_ne!(bound.port(), 0);
        let mut stream = std::net::TcpStream::connect(bound).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
        assert!(body.contains("content-type: text/plain; version=0.0.4"));
        assert!(body.ends_with("\r\n\r\nup 1\n"), "{body}");
    }
}
