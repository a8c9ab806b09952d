//! Studies that did not finish say so: a runner killed with SIGKILL leaves the runs it
//! finished in run.json, and `gpushare report` says how many of the plan's runs are there
//! and why the rest are not, and exits 4. Progress on a closed or broken stderr never
//! takes a study down.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{gpushare, quick_scenario, stderr, stdout, write_scenario};

/// The quick two-tenant scenario, 3 repetitions: 6 runs of about a second each.
fn six_runs(dir: &std::path::Path) -> std::path::PathBuf {
    write_scenario(
        dir,
        "six.toml",
        &quick_scenario("").replace("repetitions = 1", "repetitions = 3"),
    )
}

fn recorded_runs(study: &std::path::Path) -> Option<usize> {
    let text = std::fs::read_to_string(study.join("run.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["runs"].as_array().map(Vec::len)
}

#[test]
fn a_killed_runner_leaves_a_study_that_reports_itself_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = six_runs(dir.path());
    let study = dir.path().join("study");
    let mut runner = gpushare()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&study)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while recorded_runs(&study).unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "no run recorded within 60 s");
        assert!(
            runner.try_wait().unwrap().is_none(),
            "the runner ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // While it runs, the report says so.
    let running = gpushare().arg("report").arg(&study).output().unwrap();
    assert_eq!(running.status.code(), Some(4), "{}", stderr(&running));
    assert!(
        stderr(&running).ends_with(
            "; the runner recorded no end: it was killed or crashed, or is still running: a `gpushare run` is still writing it; re-render it when the run ends\n"
        ),
        "{}",
        stderr(&running)
    );

    runner.kill().unwrap();
    runner.wait().unwrap();
    let recorded = recorded_runs(&study).expect("run.json is whole after SIGKILL");
    assert!((1..6).contains(&recorded), "{recorded} runs recorded");

    let report = gpushare().arg("report").arg(&study).output().unwrap();
    assert_eq!(report.status.code(), Some(4), "{}", stderr(&report));
    let sentence = format!(
        "INCOMPLETE: {recorded} of 6 planned runs recorded; the runner recorded no end: it was killed or crashed, or is still running"
    );
    assert!(
        stdout(&report).contains(&format!("{sentence}\n")),
        "{}",
        stdout(&report)
    );
    assert_eq!(
        stderr(&report),
        format!(
            "{}: {sentence}: no runner holds its lock, so the runner was killed or crashed; the runs recorded are kept\n",
            study.display()
        )
    );
    let json = gpushare()
        .args(["report", "--format", "json"])
        .arg(&study)
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(4));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["planned_runs"], 6);
    assert_eq!(value["recorded_runs"], recorded);
    assert_eq!(value["incomplete"], sentence.as_str());
}

/// A pipe whose read end is already closed: every write to the other end fails (EPIPE).
fn broken_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array; each is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

#[test]
fn a_study_survives_a_broken_stderr_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "quick.toml", &quick_scenario(""));
    let study = dir.path().join("study");
    let out = gpushare()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&study)
        .stdout(Stdio::from(broken_pipe()))
        .stderr(Stdio::from(broken_pipe()))
        .status()
        .unwrap();
    // 0, or 3 when a run of this busy machine was INVALID; never 101 (a panic).
    assert!(matches!(out.code(), Some(0 | 3)), "{out:?}");
    assert_eq!(recorded_runs(&study), Some(2));
    let report = gpushare().arg("report").arg(&study).output().unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
}

#[test]
fn run_piped_into_head_finishes_its_study() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "quick.toml", &quick_scenario(""));
    let study = dir.path().join("study");
    // The issue's own command: head exits after the first line, closing the pipe that
    // both stdout and stderr write to.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" run "$1" --out "$2" 2>&1 | head -1; echo "status ${PIPESTATUS[0]}""#)
        .arg(env!("CARGO_BIN_EXE_gpushare"))
        .arg(&scenario)
        .arg(&study)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.ends_with("status 0\n") || text.ends_with("status 3\n"),
        "{text}"
    );
    assert_eq!(recorded_runs(&study), Some(2));
}
