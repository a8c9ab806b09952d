//! `gpushare run --prometheus ADDR`: a CPU study's live figures scraped over HTTP while it
//! runs, and the address errors that stop a study before its first run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{gpushare, stderr, write_scenario};

/// Two repetitions of exclusive and time-sliced runs of a CPU fixture with an SLO and a
/// CPU notebook (which measures its own latency), with half-second windows: four runs.
const SCENARIO: &str = r#"name = "live-cpu"
[run]
warmup_s = 0.0
duration_s = 0.5
min_duration_s = 0.1
repetitions = 2
min_samples = 5
[[modes]]
mode = "exclusive"
[[modes]]
mode = "time-slicing"
[[tenants]]
name = "steady"
workload = "cpu.synthetic"
params = { step_ms = 2.0 }
slo = { percentile = 50.0, target_ms = 100.0 }
[[tenants]]
name = "notebook"
workload = "interactive.notebook"
params = { device = "cpu", think_ms = 20.0, cell_ms = 5.0 }
"#;

fn scrape(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = response.strip_prefix("HTTP/1.0 200 OK")?;
    assert!(
        body.contains("content-type: text/plain; version=0.0.4"),
        "{body}"
    );
    Some(body.split_once("\r\n\r\n")?.1.to_string())
}

/// The value of the series written exactly as `series` (`name{labels}`), if present.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn a_running_study_serves_its_live_figures_labelled_by_run_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", SCENARIO);
    let mut child = gpushare()
        .args(["run", "--prometheus", "127.0.0.1:0", "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = vec![];
    let addr = loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) else {
            panic!("no serving line on stderr:\n{}", log.join("\n"));
        };
        log.push(line.clone());
        if let Some(rest) =
            line.strip_prefix("serving the study's live figures as Prometheus text on http://")
        {
            break rest.strip_suffix("/metrics").unwrap().to_string();
        }
    };
    let mut bodies = vec![];
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        bodies.extend(scrape(&addr));
        std::thread::sleep(Duration::from_millis(40));
    }
    let status = child.wait().unwrap();
    log.extend(lines.try_iter());
    assert!(status.success(), "{}", log.join("\n"));
    assert!(bodies.len() >= 10, "{} scrapes", bodies.len());

    let study = "study=\"study\",scenario=\"live-cpu\"";
    let run = |mode: &str, rep: u32| {
        format!("{study},mode=\"{mode}\",config=\"c0\",repetition=\"{rep}\"")
    };
    let tenant = |mode: &str, rep: u32, name: &str, workload: &str| {
        format!(
            "{},tenant=\"{name}\",workload=\"{workload}\"",
            run(mode, rep)
        )
    };
    let mut finished = vec![];
    for body in &bodies {
        assert_eq!(
            value(body, &format!("gpushare_study_runs_planned{{{study}}}")),
            Some(4.0),
            "{body}"
        );
        finished.push(
            value(
                body,
                &format!("gpushare_study_runs_finished_total{{{study}}}"),
            )
            .unwrap(),
        );
        let phases = body
            .lines()
            .filter(|l| l.starts_with("gpushare_run_phase{") && l.ends_with(" 1"))
            .count();
        assert!(phases <= 1, "one phase at a time\n{body}");
    }
    assert!(finished.windows(2).all(|w| w[0] <= w[1]), "{finished:?}");
    assert!(finished.last().is_some_and(|&n| n >= 3.0), "{finished:?}");

    // The last time-sliced run, while it measured: each tenant's window so far.
    let measuring = bodies
        .iter()
        .filter(|b| {
            value(
                b,
                &format!(
                    "gpushare_run_phase{{{},phase=\"measuring\"}}",
                    run("time-slicing", 1)
                ),
            ) == Some(1.0)
        })
        .find(|b| {
            let notebook = tenant("time-slicing", 1, "notebook", "interactive.notebook");
            value(
                b,
                &format!("gpushare_tenant_latency_seconds_count{{{notebook}}}"),
            )
            .is_some_and(|n| n >= 2.0)
        })
        .expect("a scrape of the last run measuring, with notebook cells");
    let steady = tenant("time-slicing", 1, "steady", "cpu.synthetic");
    let items = value(
        measuring,
        &format!("gpushare_tenant_items_total{{{steady}}}"),
    )
    .unwrap();
    assert!(items >= 1.0, "{measuring}");
    let rate = value(
        measuring,
        &format!("gpushare_tenant_throughput_items_per_second{{{steady}}}"),
    )
    .unwrap();
    // A 2 ms step is at most 500 steps/s of one item each.
    assert!(rate > 0.0 && rate <= 510.0, "{rate} items/s\n{measuring}");
    let p50 = value(
        measuring,
        &format!("gpushare_tenant_step_seconds{{{steady},quantile=\"0.5\"}}"),
    )
    .unwrap();
    assert!((0.0019..0.5).contains(&p50), "step P50 {p50} s");
    assert_eq!(
        value(
            measuring,
            &format!("gpushare_tenant_slo_target_seconds{{{steady},quantile=\"0.5\"}}")
        ),
        Some(0.1)
    );
    let notebook = tenant("time-slicing", 1, "notebook", "interactive.notebook");
    let wait = value(
        measuring,
        &format!("gpushare_tenant_latency_seconds{{{notebook},quantile=\"0.5\"}}"),
    )
    .unwrap();
    // A cell spins 5 ms: the wait for it is at least that, and far below a second.
    assert!((0.0049..1.0).contains(&wait), "notebook wait P50 {wait} s");
    assert!(
        !measuring.contains("gpushare_tenant_latency_seconds_count{study=\"study\",scenario=\"live-cpu\",mode=\"time-slicing\",config=\"c0\",repetition=\"1\",tenant=\"steady\""),
        "a tenant that measures no latency has no latency series"
    );

    // The finished runs of the first repetition, with NP against the exclusive run.
    let last = bodies.last().unwrap();
    assert_eq!(
        value(
            last,
            &format!(
                "gpushare_tenant_normalized_progress{{{}}}",
                tenant("exclusive", 0, "steady", "cpu.synthetic")
            )
        ),
        Some(1.0),
        "{last}"
    );
    let np = value(
        last,
        &format!(
            "gpushare_tenant_normalized_progress{{{}}}",
            tenant("time-slicing", 0, "steady", "cpu.synthetic")
        ),
    )
    .unwrap();
    assert!(np > 0.0 && np <= 1.5, "NP {np}\n{last}");
    let stp = value(
        last,
        &format!(
            "gpushare_run_system_throughput{{{}}}",
            run("time-slicing", 0)
        ),
    )
    .unwrap();
    assert!(
        stp > np,
        "STP {stp} sums the tenants' NP ({np} and the notebook's)"
    );

    let served: std::collections::BTreeSet<&str> = bodies
        .iter()
        .flat_map(|b| b.lines())
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    dashboard_queries_only(&served);
}

/// The study dashboard queries only what `run --prometheus` served in this study, and the
/// GPU figures it serves with dcgm-exporter's names during runs that sample NVML.
fn dashboard_queries_only(served: &std::collections::BTreeSet<&str>) {
    let dcgm = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"];
    let path = crate::common::root().join("docs/grafana/gpushare-study.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("gpushare_") || w.starts_with("DCGM_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    served.contains(name) || dcgm.contains(&name),
                    "{name} in {expr} is not served (served: {served:?})"
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 10, "{queried}");
}

#[test]
fn a_port_in_use_stops_the_study_before_its_first_run() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", SCENARIO);
    let out = gpushare()
        .args(["run", "--prometheus", &addr, "--out"])
        .arg(dir.path().join("study"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("error: serving Prometheus text on {addr}: ")),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with(
            "another process listens there: choose another port, or port 0 for a free one"
        ),
        "{err}"
    );
    assert!(!dir.path().join("study").exists(), "nothing ran");
}

#[test]
fn a_bad_address_is_a_usage_error() {
    let out = gpushare()
        .args(["run", "smoke-cpu", "--prometheus", "9400"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid value '9400' for '--prometheus <ADDR>': `9400` is not an address to \
             listen on; write IP:PORT, e.g. 127.0.0.1:9400 (port 0 picks a free port)"
        ),
        "{}",
        stderr(&out)
    );
}
