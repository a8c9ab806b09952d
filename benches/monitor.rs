//! Monitor overhead: CPU time the sampler thread uses per second of wall time, sampling
//! every 100 ms, against the synthetic source (the sampler's own cost) and, where there is
//! a GPU, against NVML while the GPU idles and while probe.compute runs. The goal is under
//! 1% of one core. Without a GPU the NVML part prints one line and is skipped.
//!
//! Run by `cargo bench --bench monitor` it samples 5 s per case; run any other way (for
//! example `cargo test --benches`) it samples 0.5 s, as a smoke test.

use std::time::{Duration, Instant};

use gpushare::monitor::{self, MonitorConfig, MonitorHandle, MonitorSeries, SyntheticSource};

const GOAL_FRACTION: f64 = 0.01;

fn report(case: &str, series: &MonitorSeries) {
    let Some(fraction) = series.sampler_cpu_fraction() else {
        println!("monitor/{case}: this platform cannot measure one thread's CPU time");
        return;
    };
    let verdict = if fraction < GOAL_FRACTION {
        "under"
    } else {
        "OVER"
    };
    println!(
        "monitor/{case}: sampler thread used {:.3}% of one core ({} samples in {:.1} s), {verdict} the 1% goal",
        fraction * 100.0,
        series.samples.len(),
        series.duration_s
    );
    println!("FIGURE monitor_cpu_{case} {:.4} %core", fraction * 100.0);
}

fn sample_for(handle: MonitorHandle, duration: Duration, mut work: impl FnMut()) -> MonitorSeries {
    let start = Instant::now();
    while start.elapsed() < duration {
        work();
    }
    handle.stop()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let duration = if full {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    };
    let config = MonitorConfig {
        interval_ms: 100,
        gpu_index: 0,
    };
    let idle = || std::thread::sleep(Duration::from_millis(10));

    let handle = monitor::start_with_source(config, Box::new(SyntheticSource::new()))
        .expect("starting the synthetic monitor");
    report("synthetic", &sample_for(handle, duration, idle));

    let handle = match monitor::start(config) {
        Ok(handle) => handle,
        Err(err) => {
            println!("no GPU: skipping NVML monitor overhead ({err})");
            return;
        }
    };
    let series = sample_for(handle, duration, idle);
    report("nvml_idle", &series);
    for note in &series.notes {
        println!(
            "  note: {} ({:?}): {}",
            note.metric, note.kind, note.message
        );
    }
    nvml_under_load(config, duration);
}

#[cfg(feature = "cuda")]
fn nvml_under_load(config: MonitorConfig, duration: Duration) {
    use gpushare::workload::{self, Params};
    let mut probe =
        workload::build("probe.compute", &Params::default(), 1).expect("building probe.compute");
    if let Err(err) = probe.prepare(Duration::from_millis(200)) {
        println!("monitor/nvml_busy: skipped, probe.compute could not start: {err}");
        return;
    }
    let handle = monitor::start(config).expect("starting the NVML monitor");
    let series = sample_for(handle, duration, || {
        probe.step().expect("running probe.compute");
    });
    report("nvml_busy", &series);
}

#[cfg(not(feature = "cuda"))]
fn nvml_under_load(_config: MonitorConfig, _duration: Duration) {}
