//! The `container` isolation backend against processes, side by side in one run and
//! alternating so drift of the machine affects both alike:
//! - a 1 ms `cpu.synthetic` tenant's throughput in a container over the same tenant as a
//!   process (goal: 0.99 or better);
//! - the time from asking the backend for a worker to its Ready, per tenant, and what a
//!   container adds to it (goal: under 1 s on a 2-core machine).
//!
//! Both sides must run the same gpushare build: the process side runs this bench's
//! gpushare, the container side the test image's. So either
//! `cargo build && scripts/build-test-image.sh && cargo bench --profile dev --bench container`
//! or `cargo build --release && scripts/build-test-image.sh target/release/gpushare &&
//! cargo bench --bench container`. It refuses an image holding another build, and without
//! an engine prints one line and exits 0.

use std::path::Path;
use std::time::{Duration, Instant};

use gpushare::isolation::container::ContainerSettings;
use gpushare::isolation::{ContainerIsolation, Isolation, ProcessIsolation, WorkerLaunch};
use gpushare::runner::{run_study, Progress, StudyInput};
use gpushare::scenario::{self, Plan};
use gpushare::worker::protocol::{self, FromWorker, ToWorker, WorkerSpec, VERSION};
use gpushare::workload::{ParamValue, Params};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WINDOW_S: f64 = 5.0;
const STEP_MS: f64 = 1.0;
const ROUNDS: usize = 3;
const SPAWNS: usize = 5;

/// Items per second of a 1 ms `cpu.synthetic` tenant under the runner with `isolation`.
async fn throughput(isolation: &dyn Isolation) -> f64 {
    let text = format!(
        r#"name = "container-overhead"
[run]
warmup_s = 0.5
duration_s = {WINDOW_S}
repetitions = 1
[[modes]]
mode = "exclusive"
[[tenants]]
name = "t"
workload = "cpu.synthetic"
params = {{ step_ms = {STEP_MS} }}
"#
    );
    let path = Path::new("container-overhead.toml");
    let scenario = scenario::parse(path, &text).unwrap();
    let plan = Plan::expand(&scenario);
    let out = tempfile::tempdir().unwrap();
    let study = run_study(
        StudyInput {
            scenario: &scenario,
            scenario_source: &text,
            scenario_path: path,
            plan: &plan,
            shard: None,
            isolation,
            out_dir: out.path().to_path_buf(),
            flush_interval_ms: 100,
            monitor: None,
        },
        &Progress::hidden(),
    )
    .await
    .unwrap();
    let analysis = gpushare::metrics::analyze(&study);
    analysis.runs[0].tenants[0].throughput_items_per_s
}

/// Seconds from `spawn` to the worker's Ready (no warm-up), then ends it.
async fn spawn_to_ready(isolation: &dyn Isolation) -> f64 {
    let env = vec![];
    let launch = WorkerLaunch {
        tenant: "t",
        run_id: "bench/spawn",
        env: &env,
        gpu: false,
    };
    let start = Instant::now();
    let mut connection = isolation.spawn(&launch).await.unwrap();
    let spec = WorkerSpec {
        tenant: "t".to_string(),
        workload: "cpu.synthetic".to_string(),
        params: Params([("step_ms".to_string(), ParamValue::Float(STEP_MS))].into()),
        seed: 1,
        warmup_s: 0.0,
        flush_interval_ms: 100,
    };
    let start_line = protocol::encode(&ToWorker::Start { v: VERSION, spec });
    connection
        .to_worker
        .write_all(start_line.as_bytes())
        .await
        .unwrap();
    connection.to_worker.flush().await.unwrap();
    let mut lines = BufReader::new(connection.from_worker).lines();
    loop {
        let line = lines.next_line().await.unwrap().expect("worker sent Ready");
        if let Ok(FromWorker::Ready { .. }) = protocol::decode_from_worker(&line) {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // End of stdin ends the worker; its container removes itself.
    drop(connection.to_worker);
    let _ = tokio::time::timeout(Duration::from_secs(10), connection.handle.wait()).await;
    elapsed
}

/// Why the test image does not hold `exe`, if it does not.
fn other_build_in_image(exe: &std::path::Path) -> Option<String> {
    let run = |cmd: &mut std::process::Command| {
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let image = gpushare::isolation::container::test_image();
    let ours = run(std::process::Command::new("sha256sum").arg(exe))?
        .split_whitespace()
        .next()
        .map(str::to_string)?;
    let label = "{{index .Config.Labels \"gpushare.binary\"}}";
    let theirs =
        run(std::process::Command::new("docker")
            .args(["image", "inspect", "--format", label, &image]));
    (theirs.as_deref() != Some(ours.as_str())).then(|| {
        format!(
            "{image} does not hold {} (run scripts/build-test-image.sh {})",
            exe.display(),
            exe.display()
        )
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let exe: std::path::PathBuf = std::env::var_os("GPUSHARE_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_gpushare").into(), Into::into);
    if let Some(why) = other_build_in_image(&exe) {
        println!("container bench skipped: {why}");
        return;
    }
    let process = ProcessIsolation::new(Some(exe.clone())).unwrap();
    let study_id = format!("bench-container-{}", std::process::id());
    let container = match runtime.block_on(ContainerIsolation::connect(
        ContainerSettings::default(),
        &study_id,
        Some(exe),
    )) {
        Ok((container, _)) => container,
        Err(err) => {
            println!(
                "container bench skipped: failed to {}",
                gpushare::errors::error_chain(&err)
            );
            return;
        }
    };
    runtime.block_on(async {
        let (mut in_process, mut in_container) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            in_process.push(throughput(&process).await);
            in_container.push(throughput(&container).await);
        }
        println!(
            "container/1ms-cpu.synthetic: {WINDOW_S} s windows x {ROUNDS}, alternating: process {:.1} steps/s, container {:.1} steps/s, ratio {:.4} (goal >= 0.99)",
            mean(&in_process),
            mean(&in_container),
            mean(&in_container) / mean(&in_process)
        );
        let (mut process_ready, mut container_ready) = (vec![], vec![]);
        for _ in 0..SPAWNS {
            process_ready.push(spawn_to_ready(&process).await);
            container_ready.push(spawn_to_ready(&container).await);
        }
        let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        println!(
            "container/spawn-to-ready: x {SPAWNS}, alternating: process {:.3} s (max {:.3}), container {:.3} s (max {:.3}), extra per container tenant {:.3} s (goal < 1 s)",
            mean(&process_ready),
            max(&process_ready),
            mean(&container_ready),
            max(&container_ready),
            mean(&container_ready) - mean(&process_ready)
        );
    });
}
