//! The worker protocol over TCP with real workers on 127.0.0.1: the same VALID report as
//! over pipes, workers that dial in as pods do (`--isolation tcp`, `worker --redial`), and
//! a FAILED verdict with its reason for a worker that never connects, one with the wrong
//! token, and one that disconnects mid-window. A worker never measures before Go.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{gpushare, marked_processes, quick_scenario, write_scenario};

fn two_mode_scenario() -> String {
    quick_scenario("").replace(
        "[[modes]]\nmode = \"time-slicing\"",
        "[[modes]]\nmode = \"exclusive\"\n\n[[modes]]\nmode = \"time-slicing\"",
    )
}

fn read_study(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// A port that was free a moment ago, for a runner the test must know the address of.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The study's shape with every figure blanked: run ids, statuses, tenants, verdicts.
fn shape(value: &Value) -> Value {
    match value {
        Value::Number(_) => Value::from(0),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

fn run_study(dir: &std::path::Path, scenario: &std::path::Path, extra: &[&str]) -> (Value, i32) {
    let out = dir.join(format!(
        "study-{}",
        extra.join("-").replace(['.', ':'], "_")
    ));
    let output = gpushare()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(&out)
        .args(["--monitor-interval-ms", "0"])
        .args(extra)
        .env("GPUSHARE_TEST_MARKER", "tcp-transport")
        .output()
        .unwrap();
    (read_study(&out), output.status.code().unwrap_or(-1))
}

fn failures(study: &Value) -> Vec<String> {
    study["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["failure"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn tcp_local_gives_the_same_valid_report_as_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &two_mode_scenario());
    let (pipes, pipes_code) = run_study(dir.path(), &scenario, &[]);
    let (tcp, tcp_code) = run_study(dir.path(), &scenario, &["--isolation", "tcp-local"]);
    assert_eq!((pipes_code, tcp_code), (0, 0));
    let analysis_shape = |s: &Value| shape(&s["analysis"]);
    assert_eq!(analysis_shape(&pipes), analysis_shape(&tcp));
    for study in [&pipes, &tcp] {
        let runs = study["analysis"]["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        assert!(
            runs.iter().all(|r| r["verdict"]["valid"] == true),
            "{runs:?}"
        );
    }
    // Both tenants measured in the shared run over TCP.
    for tenant in tcp["runs"][1]["tenants"].as_array().unwrap() {
        assert!(tenant["summary"]["steps"].as_u64().unwrap() > 5, "{tenant}");
    }
    assert!(marked_processes("tcp-transport").is_empty());
}

/// Workers started the way pods start: on their own, dialing the runner, one session
/// after another.
fn dialing_worker(port: u16, tenant: &str, token: &str, marker: &str) -> Child {
    gpushare()
        .args(["worker", "--connect", &format!("127.0.0.1:{port}")])
        .args(["--tenant", tenant, "--redial", "--dial-timeout-s", "3"])
        .env("GPUSHARE_TOKEN", token)
        .env("GPUSHARE_TEST_MARKER", marker)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn workers_that_dial_in_serve_every_run_of_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s.toml", &two_mode_scenario());
    let port = free_port();
    let workers = [
        dialing_worker(port, "good", "s3cret", "tcp-dial"),
        dialing_worker(port, "bad", "s3cret", "tcp-dial"),
    ];
    let listen = format!("127.0.0.1:{port}");
    let (study, code) = run_study(
        dir.path(),
        &scenario,
        &[
            "--isolation",
            "tcp",
            "--listen",
            &listen,
            "--token",
            "s3cret",
        ],
    );
    assert_eq!(code, 0, "{:?}", failures(&study));
    let runs = study["analysis"]["runs"].as_array().unwrap();
    assert!(
        runs.iter().all(|r| r["verdict"]["valid"] == true),
        "{runs:?}"
    );
    // The runner entered no mode itself: the workers' platform set it up.
    assert_eq!(
        study["runs"][1]["mode_record"]["notes"][0],
        "time-slicing: set up by the workers' platform (the node's device plugin), not by gpushare"
    );
    // Once the runner is gone, each worker stops dialing and ends cleanly.
    for worker in workers {
        let (code, stderr) = stderr_of(worker);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("the study is over"), "{stderr}");
    }
    assert!(marked_processes("tcp-dial").is_empty());
}

fn with_ready_timeout(text: &str, seconds: u32) -> String {
    text.replace(
        "ready_timeout_s = 10",
        &format!("ready_timeout_s = {seconds}"),
    )
}

#[test]
fn a_worker_that_never_connects_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "s.toml",
        &with_ready_timeout(&quick_scenario(""), 1),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (study, code) = run_study(
        dir.path(),
        &scenario,
        &["--isolation", "tcp", "--listen", &listen, "--token", "t"],
    );
    assert_eq!(code, 3);
    // The exclusive baseline and the shared run both wait for `good` first.
    let expected = format!(
        "waiting for the worker of tenant `good` to connect to 127.0.0.1:{port}: none joined within 1 s"
    );
    assert_eq!(failures(&study), vec![expected.clone(), expected]);
}

#[test]
fn a_worker_with_the_wrong_token_is_refused_and_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "s.toml",
        &with_ready_timeout(&quick_scenario(""), 2),
    );
    let port = free_port();
    let intruder = gpushare()
        .args(["worker", "--connect", &format!("127.0.0.1:{port}")])
        .args(["--tenant", "good", "--dial-timeout-s", "5"])
        .env("GPUSHARE_TOKEN", "guess")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let (study, code) = run_study(
        dir.path(),
        &scenario,
        &[
            "--isolation",
            "tcp",
            "--listen",
            &listen,
            "--token",
            "right",
        ],
    );
    assert_eq!(code, 3);
    let failures = failures(&study);
    assert_eq!(failures.len(), 2, "{failures:?}");
    let expected_start = format!(
        "waiting for the worker of tenant `good` to connect to 127.0.0.1:{port}: none joined within 2 s; refused: a worker from 127.0.0.1:"
    );
    for failure in &failures {
        assert!(failure.starts_with(&expected_start), "{failure}");
        assert!(
            failure.ends_with(": wrong token (tenant `good`)"),
            "{failure}"
        );
    }
    let (code, stderr) = stderr_of(intruder);
    assert_eq!(code, Some(3));
    assert_eq!(
        stderr.trim_end(),
        format!(
            "gpushare worker: joining the runner at 127.0.0.1:{port}: it refused this worker: wrong token"
        )
    );
}

#[test]
fn a_worker_disconnecting_mid_window_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = quick_scenario(r#", fault = "exit", fault_after_steps = 10"#);
    let scenario = write_scenario(dir.path(), "s.toml", &text);
    // tcp-local: the runner knows the child's status too.
    let (study, code) = run_study(dir.path(), &scenario, &["--isolation", "tcp-local"]);
    assert_eq!(code, 3);
    // The exclusive baseline and the shared run.
    let local = failures(&study);
    assert_eq!(local.len(), 2, "{local:?}");
    for failure in &local {
        assert!(
            failure.starts_with(
                "worker `bad` exited during the measured window; worker `bad` exited with status 3"
            ),
            "{failure}"
        );
    }
    // A pod's worker: the runner sees only the connection end.
    let port = free_port();
    let workers = [
        dialing_worker(port, "good", "t", "tcp-cut"),
        dialing_worker(port, "bad", "t", "tcp-cut"),
    ];
    let listen = format!("127.0.0.1:{port}");
    let (study, code) = run_study(
        dir.path(),
        &scenario,
        &["--isolation", "tcp", "--listen", &listen, "--token", "t"],
    );
    assert_eq!(code, 3);
    let cut = "worker `bad` exited during the measured window".to_string();
    assert_eq!(failures(&study), vec![cut.clone(), cut]);
    for worker in workers {
        let (code, stderr) = stderr_of(worker);
        assert_eq!(code, Some(0), "{stderr}");
    }
    assert!(marked_processes("tcp-cut").is_empty());
}

/// A runner played by the test: after Ready the worker stays silent until Go, and every
/// sample it sends is timed from Go.
#[test]
fn a_worker_over_tcp_measures_nothing_before_go() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let worker = gpushare()
        .args(["worker", "--connect", &format!("127.0.0.1:{port}")])
        .args(["--tenant", "a"])
        .env("GPUSHARE_TOKEN", "t")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut to_worker = stream.try_clone().unwrap();
    let mut from_worker = BufReader::new(stream);
    let mut line = String::new();
    from_worker.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "{\"msg\":\"hello\",\"v\":1,\"token\":\"t\",\"tenant\":\"a\"}\n"
    );
    let start = r#"{"msg":"start","v":1,"spec":{"tenant":"a","workload":"cpu.synthetic","params":{"step_ms":1.0},"seed":1,"warmup_s":0.0,"flush_interval_ms":20}}"#;
    writeln!(to_worker, "{{\"msg\":\"accepted\",\"v\":1}}\n{start}").unwrap();
    line.clear();
    from_worker.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"msg\":\"ready\""), "{line}");
    // Silence before Go: nothing arrives in half a second.
    from_worker
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    line.clear();
    let silent = from_worker.read_line(&mut line);
    assert!(silent.is_err(), "the worker sent {line:?} before Go");
    from_worker.get_ref().set_read_timeout(None).unwrap();
    let go = Instant::now();
    writeln!(to_worker, "{{\"msg\":\"go\",\"v\":1}}").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    writeln!(to_worker, "{{\"msg\":\"stop\",\"v\":1}}").unwrap();
    let mut samples = 0;
    loop {
        line.clear();
        assert!(from_worker.read_line(&mut line).unwrap() > 0, "no summary");
        let msg: Value = serde_json::from_str(&line).unwrap();
        match msg["msg"].as_str().unwrap() {
            "samples" => {
                for s in msg["samples"].as_array().unwrap() {
                    let end_s = s["end_s"].as_f64().unwrap();
                    assert!(end_s > 0.0 && end_s <= go.elapsed().as_secs_f64(), "{s}");
                    samples += 1;
                }
            }
            "summary" => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(samples > 10, "{samples}");
    let (code, stderr) = stderr_of(worker);
    assert_eq!(code, Some(0), "{stderr}");
}
