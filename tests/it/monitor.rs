//! `gpushare monitor` through the binary, on the synthetic source.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{gpushare, stderr, stdout};

#[test]
fn the_synthetic_monitor_prints_a_frame_with_history_and_processes() {
    let out = gpushare()
        .args([
            "monitor",
            "--synthetic",
            "--frames",
            "15",
            "--interval",
            "20ms",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("gpushare monitor: every 20ms; synthetic source, not GPU data\n"),
        "{text}"
    );
    assert!(text.contains(" GPU 0: synthetic GPU "), "{text}");
    assert!(text.contains("SM clock 1980 MHz"), "{text}");
    assert!(text.contains("pid      process"), "{text}");
}

#[test]
fn without_a_gpu_the_monitor_says_so_in_one_line() {
    let out = gpushare()
        .args(["monitor", "--frames", "1"])
        .output()
        .unwrap();
    if out.status.success() {
        // This host has a GPU: the view drew it.
        assert!(stdout(&out).contains(" GPU 0: "), "{}", stdout(&out));
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: no GPU to monitor ("), "{err}");
    assert!(
        err.trim_end()
            .ends_with("`gpushare monitor --synthetic` shows the view with synthetic data"),
        "{err}"
    );
}

#[test]
fn the_monitor_serves_prometheus_text_with_dcgm_names() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = gpushare()
        .args([
            "monitor",
            "--synthetic",
            "--frames",
            "100",
            "--interval",
            "50ms",
        ])
        .args(["--prometheus", &addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut body = String::new();
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(&addr) {
            stream
                .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
                .unwrap();
            body.clear();
            stream.read_to_string(&mut body).unwrap();
            if body.contains("DCGM_FI_DEV_POWER_USAGE") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(
        body.contains("content-type: text/plain; version=0.0.4"),
        "{body}"
    );
    assert!(
        body.contains(
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"\",device=\"nvidia0\",modelName=\"synthetic GPU\","
        ),
        "{body}"
    );
    assert!(body.contains("# TYPE DCGM_FI_DEV_GPU_UTIL gauge"), "{body}");
}

/// The shipped Grafana dashboard queries only metrics `monitor --prometheus` serves.
#[test]
fn the_grafana_dashboard_queries_metrics_the_monitor_serves() {
    let text =
        std::fs::read_to_string(crate::common::root().join("docs/grafana/gpushare-monitor.json"))
            .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let served = [
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
        "gpushare_process_memory_used_bytes",
        "gpushare_process_sm_utilization_ratio",
    ];
    let panels = dashboard["panels"].as_array().unwrap();
    assert_eq!(panels.len(), served.len());
    for panel in panels {
        let expr = panel["targets"][0]["expr"].as_str().unwrap();
        let metric = expr.split('{').next().unwrap();
        assert!(served.contains(&metric), "{expr}");
    }
}
