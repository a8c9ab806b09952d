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
    // The goal is the steady cost; the first reading pays NVML's one-time set-up.
    let steady = series.sampler_steady_cpu_fraction().unwrap_or(fraction);
    let verdict = if steady < GOAL_FRACTION {
        "under"
    } else {
        "OVER"
    };
    println!(
        "monitor/{case}: sampler thread used {:.3}% of one core after its first reading, {verdict} the 1% goal ({:.3}% with it; {} samples in {:.1} s)",
        steady * 100.0,
        fraction * 100.0,
        series.samples.len(),
        series.duration_s
    );
    println!("FIGURE monitor_cpu_{case} {:.4} %core", steady * 100.0);
    println!(
        "FIGURE monitor_cpu_{case}_with_first_reading {:.4} %core",
        fraction * 100.0
    );
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
        ..MonitorConfig::default()
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
    nvml_query_costs();
}

/// CPU time of each NVML query the sampler makes, averaged over repeated calls: says
/// which ones the overhead comes from.
#[cfg(feature = "cuda")]
fn nvml_query_costs() {
    use gpushare::monitor::thread_cpu_s;
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    use nvml_wrapper::Nvml;

    const CALLS: u32 = 50;
    let Ok(nvml) = Nvml::init() else { return };
    let Ok(device) = nvml.device_by_index(0) else {
        return;
    };
    let cost = |name: &str, mut query: Box<dyn FnMut() -> bool + '_>| {
        let ok = query();
        let (cpu0, wall0) = (thread_cpu_s().unwrap_or(0.0), Instant::now());
        for _ in 0..CALLS {
            query();
        }
        let cpu_us = (thread_cpu_s().unwrap_or(0.0) - cpu0) * 1e6 / f64::from(CALLS);
        let wall_us = wall0.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
        println!(
            "monitor/query {name:<26} cpu {cpu_us:>9.1} us  wall {wall_us:>9.1} us{}",
            if ok { "" } else { "  (answers an error)" }
        );
    };
    cost(
        "device_by_index",
        Box::new(|| nvml.device_by_index(0).is_ok()),
    );
    cost(
        "utilization_rates",
        Box::new(|| device.utilization_rates().is_ok()),
    );
    cost("memory_info", Box::new(|| device.memory_info().is_ok()));
    cost(
        "clock_info(sm)",
        Box::new(|| device.clock_info(Clock::SM).is_ok()),
    );
    cost(
        "clock_info(memory)",
        Box::new(|| device.clock_info(Clock::Memory).is_ok()),
    );
    cost("power_usage", Box::new(|| device.power_usage().is_ok()));
    cost(
        "total_energy_consumption",
        Box::new(|| device.total_energy_consumption().is_ok()),
    );
    cost(
        "temperature",
        Box::new(|| device.temperature(TemperatureSensor::Gpu).is_ok()),
    );
    cost(
        "current_throttle_reasons",
        Box::new(|| device.current_throttle_reasons().is_ok()),
    );
    cost(
        "running_compute_processes",
        Box::new(|| device.running_compute_processes().is_ok()),
    );
    cost(
        "mps_running_compute_procs",
        Box::new(|| device.mps_running_compute_processes().is_ok()),
    );
    cost(
        "process_utilization_stats",
        Box::new(|| device.process_utilization_stats(None).is_ok()),
    );
}

#[cfg(not(feature = "cuda"))]
fn nvml_query_costs() {}

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
