//! The `container` isolation backend against the real Docker engine: smoke-cpu end to end,
//! faulty workers, signals to the runner, a missing image, an unreachable engine, a
//! container that cannot start. Every test labels its study with a name of its own, and
//! removes that study's containers when it ends, passed or not. The engine tests need
//! `gpushare-test:<version>` built from this very binary: `scripts/build-test-image.sh`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gpushare::scenario::{self, ScenarioError};
use serde_json::Value;

use crate::common::{gpushare, quick_scenario, root, stderr, stdout, write_scenario};

/// The label every container of a study carries.
const STUDY_LABEL: &str = "gpushare.study";

/// A study directory whose name (the study id in the containers' labels) is unique to one
/// test; dropping it removes the study's containers, whatever the test's outcome.
struct Study {
    dir: tempfile::TempDir,
    id: String,
}

impl Study {
    fn new(test: &str) -> Study {
        Study {
            dir: tempfile::tempdir().unwrap(),
            id: format!("ctest-{test}-{}", std::process::id()),
        }
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join(&self.id)
    }

    fn run_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.out().join("run.json")).unwrap())
            .unwrap()
    }

    /// Ids of the study's containers, running or not.
    fn containers(&self) -> Vec<String> {
        let output = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label={STUDY_LABEL}={}", self.id))
            .output()
            .expect("the docker CLI runs");
        stdout(&output)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Waits up to `timeout` until the study has no container; returns those left.
    fn wait_for_no_containers(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.containers();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Study {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

/// The label the test image carries: the SHA-256 of the gpushare binary it holds.
fn test_image_stamp(image: &str) -> Option<String> {
    let output = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"gpushare.binary\"}}",
        ])
        .arg(image)
        .output()
        .expect("the docker CLI runs");
    output
        .status
        .success()
        .then(|| stdout(&output).trim().to_string())
}

/// Makes sure the test image holds this very binary: builds it with
/// `scripts/build-test-image.sh` when it is missing or holds another build (the tests of
/// this group run one at a time, so one of them builds it and the rest find it current),
/// and fails with the command to run if that does not work.
fn require_test_image() {
    let binary = env!("CARGO_BIN_EXE_gpushare");
    let hash = Command::new("sha256sum")
        .arg(binary)
        .output()
        .expect("sha256sum runs");
    let stamp = stdout(&hash)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let image = format!("gpushare-test:{}", env!("CARGO_PKG_VERSION"));
    if test_image_stamp(&image).as_deref() != Some(stamp.as_str()) {
        let built = Command::new(root().join("scripts/build-test-image.sh"))
            .arg(binary)
            .output()
            .expect("scripts/build-test-image.sh runs");
        assert!(built.status.success(), "{}", stderr(&built));
    }
    assert_eq!(
        test_image_stamp(&image).as_deref(),
        Some(stamp.as_str()),
        "{image} is missing or holds another build of gpushare: run `scripts/build-test-image.sh` \
         (after `cargo build`) before these tests"
    );
}

fn run_in_containers(study: &Study, scenario: &Path, extra: &[&str]) -> Output {
    require_test_image();
    gpushare()
        .arg("run")
        .arg(scenario)
        .args(["--isolation", "container", "--out"])
        .arg(study.out())
        .args(extra)
        .output()
        .unwrap()
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

/// The quick two-tenant scenario with a misbehaving tenant, in containers.
fn run_fault(test: &str, fault: &str) -> (Study, Output) {
    let study = Study::new(test);
    let scenario = write_scenario(study.dir.path(), "s.toml", &quick_scenario(fault));
    let output = run_in_containers(&study, &scenario, &[]);
    (study, output)
}

#[test]
fn engine_smoke_cpu_is_valid_in_containers() {
    let study = Study::new("smoke");
    let output = run_in_containers(&study, Path::new("smoke-cpu"), &["-r", "1"]);
    let report = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}\n{}",
        stderr(&output)
    );
    assert!(report.contains("2 of 2 runs VALID"), "{report}");
    // The same report as with processes, plus the line naming image and engine.
    for section in [
        "Tenants (mean over VALID repetitions",
        "Sharing (NP against exclusive",
        "Runs\n",
    ] {
        assert!(report.contains(section), "{report}");
    }
    let image = format!(
        "tenants in containers: gpushare-test:{} (",
        env!("CARGO_PKG_VERSION")
    );
    assert!(report.contains(&image), "{report}");
    assert!(report.contains(", Docker engine "), "{report}");
    let env = &study.run_json()["environment"];
    assert_eq!(env["isolation"], "container");
    assert!(env["container"]["images"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(!env["container"]["engine_version"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(5)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_a_crashing_worker_fails_its_runs_with_its_signal() {
    let (study, output) = run_fault("crash", r#", fault = "crash", fault_after_steps = 10"#);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let failures = failures(&study.run_json());
    // Both the exclusive baseline and the shared run fail; SIGABRT is signal 6.
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in &failures {
        assert!(f.contains("worker `bad` was killed by signal 6"), "{f}");
    }
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(5)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_a_worker_exiting_early_reports_its_status() {
    let (study, output) = run_fault("exit", r#", fault = "exit", fault_after_steps = 10"#);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let failures = failures(&study.run_json());
    assert!(
        failures[0].contains("worker `bad` exited with status 3"),
        "{failures:?}"
    );
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(5)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_a_hanging_worker_is_killed_after_the_stop_timeout() {
    let (study, output) = run_fault("hang", r#", fault = "hang", fault_after_steps = 10"#);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let failures = failures(&study.run_json());
    assert!(
        failures[0].contains(
            "worker `bad` did not answer Stop within run.stop_timeout_s = 2 s (hung?) and was killed"
        ),
        "{failures:?}"
    );
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(5)),
        Vec::<String>::new()
    );
}

/// A runner the test started; killed if the test ends before it does.
struct Runner(std::process::Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a 30 s study in containers, waits until the first run's container runs, and
/// sends `signal` to the runner; returns the study and the runner's exit code.
fn signal_runner(test: &str, signal: i32) -> (Study, Option<i32>) {
    require_test_image();
    let study = Study::new(test);
    let text = quick_scenario("").replace("duration_s = 0.6", "duration_s = 30");
    let scenario = write_scenario(study.dir.path(), "s.toml", &text);
    let mut runner = Runner(
        gpushare()
            .arg("run")
            .arg(&scenario)
            .args(["--isolation", "container", "--out"])
            .arg(study.out())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while study.containers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !study.containers().is_empty(),
        "no tenant's container ever ran"
    );
    // Let the worker get Ready and measure.
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(runner.0.id() as i32, signal) };
    let code = runner.0.wait().unwrap().code();
    drop(runner);
    (study, code)
}

#[test]
fn engine_sigint_leaves_no_container() {
    let (study, code) = signal_runner("sigint", libc::SIGINT);
    assert_eq!(code, Some(130));
    assert_eq!(study.run_json()["interrupted"], true);
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(10)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_sigterm_leaves_no_container() {
    let (study, code) = signal_runner("sigterm", libc::SIGTERM);
    assert_eq!(code, Some(130));
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(10)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_sigkill_leaves_no_container_within_10_s() {
    let (study, code) = signal_runner("sigkill", libc::SIGKILL);
    assert_eq!(code, None);
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(10)),
        Vec::<String>::new()
    );
}

#[test]
fn engine_a_missing_image_is_named_and_never_pulled() {
    let study = Study::new("missing");
    let text = format!(
        "{}\n[container]\nimage = \"gpushare-no-such-image:0\"\n",
        quick_scenario("")
    );
    let scenario = write_scenario(study.dir.path(), "s.toml", &text);
    let output = run_in_containers(&study, &scenario, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "finding image `gpushare-no-such-image:0` on the Docker engine: gpushare never pulls \
             images; build it from docker/Dockerfile (see docker/README.md)"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn engine_an_unreachable_engine_is_reported() {
    let study = Study::new("deadhost");
    let scenario = write_scenario(study.dir.path(), "s.toml", &quick_scenario(""));
    let output = gpushare()
        .arg("run")
        .arg(&scenario)
        .args(["--isolation", "container", "--out"])
        .arg(study.out())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "reaching the Docker engine at unix:///nonexistent/docker.sock (is it running? \
             `docker info` tells)"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn engine_a_bad_entrypoint_fails_the_run_with_its_log_tail() {
    let study = Study::new("entrypoint");
    let text = format!(
        "{}\n[container]\nentrypoint = [\"/nope\"]\n",
        quick_scenario("")
    );
    let scenario = write_scenario(study.dir.path(), "s.toml", &text);
    let output = run_in_containers(&study, &scenario, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let failures = failures(&study.run_json());
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in &failures {
        assert!(
            f.contains(
                "worker `good` exited before reporting Ready; worker `good` exited with status \
                 127; its stderr ends:"
            ),
            "{f}"
        );
        assert!(
            f.contains("exec /nope failed: No such file or directory"),
            "{f}"
        );
    }
    assert_eq!(
        study.wait_for_no_containers(Duration::from_secs(5)),
        Vec::<String>::new()
    );
}

fn problems(text: &str) -> String {
    match scenario::parse(Path::new("s.toml"), text) {
        Err(ScenarioError::Invalid(p)) => p.to_string(),
        other => panic!("expected problems, got {other:?}"),
    }
}

const ONE_TENANT: &str = "name = \"t\"\n[[modes]]\nmode = \"exclusive\"\n[[tenants]]\nname = \"a\"\nworkload = \"cpu.synthetic\"\n";

#[test]
fn scenario_container_table_is_read() {
    let text = format!(
        "{ONE_TENANT}[run]\nisolation = \"container\"\n[container]\nimage = \"img:1\"\nuser = \"1000\"\n\
         gpus = [\"MIG-abc\"]\nenv = {{ A = \"1\" }}\ntenant_images = {{ a = \"img:2\" }}\n\
         [[container.mounts]]\nsource = \"/data\"\ntarget = \"/data\"\nread_only = true\n"
    );
    let s = scenario::parse(Path::new("s.toml"), &text).unwrap();
    assert_eq!(s.run.isolation, scenario::IsolationKind::Container);
    let c = s.container.unwrap();
    assert_eq!(c.image, "img:1");
    assert_eq!(c.image_for("a#1"), "img:2");
    assert_eq!(c.user.as_deref(), Some("1000"));
    assert_eq!(
        c.gpus,
        gpushare::isolation::container::GpuRequest::Ids(vec!["MIG-abc".into()])
    );
    assert_eq!(c.mounts[0].target, "/data");
    assert!(c.mounts[0].read_only);
}

#[test]
fn scenario_container_table_problems_have_locations() {
    let p = problems(&format!("{ONE_TENANT}[container]\nimge = \"x\"\n"));
    assert!(
        p.starts_with("s.toml:8:1: unknown field `imge`, expected one of"),
        "{p}"
    );
    let p = problems(&format!(
        "{ONE_TENANT}[run]\nisolation = \"vm\"\n[container]\ngpus = \"some\"\ntenant_images = {{ b = \"x\" }}\n\
         [[container.mounts]]\nsource = \"data\"\ntarget = \"/data\"\n"
    ));
    assert_eq!(
        p,
        "s.toml:8:13: `run.isolation`: must be \"process\" or \"container\", got \"vm\"\n\
         s.toml:10:8: `container.gpus`: write \"all\", a number of GPUs, or a list of GPU or MIG UUIDs, got \"some\"\n\
         s.toml:11:19: `container.tenant_images.b`: no tenant is named \"b\" (tenants: a)\n\
         s.toml:13:10: `container.mounts[0].source`: must be an absolute path, got \"data\""
    );
}

#[test]
fn scenario_dry_run_shows_each_tenants_container() {
    let output = gpushare()
        .args(["run", "smoke-cpu", "--dry-run", "--isolation", "container"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let image = format!("gpushare-test:{}", env!("CARGO_PKG_VERSION"));
    assert!(
        text.contains(&format!(
            "containers (isolation = \"container\", never pulled):\n  steady: image {image}, env [], mounts [], devices none (MIG: the run's instance), user the image's (under MPS: the runner's UID), network none\n"
        )),
        "{text}"
    );
}

#[test]
fn engine_containers_of_a_dead_runner_are_removed_at_start() {
    require_test_image();
    let study = Study::new("orphan");
    // A runner of this host that is gone: a child that has exited and been reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let runner = format!("{}:{dead_pid}", host.trim());
    let created = Command::new("docker")
        .args(["create", "--label", "gpushare=1", "--label"])
        .arg(format!("{STUDY_LABEL}={}", study.id))
        .args([
            "--label",
            "gpushare.run=exclusive/c0/r0",
            "--label",
            "gpushare.tenant=old",
            "--label",
        ])
        .arg(format!("gpushare.runner={runner}"))
        .arg(format!("gpushare-test:{}", env!("CARGO_PKG_VERSION")))
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let id = stdout(&created).trim().to_string();
    let other = Study::new("orphan-run");
    let scenario = write_scenario(other.dir.path(), "s.toml", &quick_scenario(""));
    let output = run_in_containers(&other, &scenario, &[]);
    assert!(
        stderr(&output).contains(&format!(
            "removed container {} (study {}, run exclusive/c0/r0, tenant old, runner {runner}): \
             left by a gpushare run that ended without cleaning up",
            &id[..12],
            study.id
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(study.containers(), Vec::<String>::new());
}
