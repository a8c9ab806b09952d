//! GPU tests of the probes and the NVML monitor. They need an NVIDIA GPU with its driver,
//! NVRTC on the library path, and the GPU to themselves (nextest group `gpu`, one at a
//! time): the ratio tests compare against the same GPU's ceilings.
//!
//! Figures are printed as `FIGURE <name> <value> <unit>` lines for
//! scripts/gpu-check-probes.sh to collect.
#![cfg(feature = "cuda")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gpushare::monitor::{self, MonitorConfig, NoteKind};
use gpushare::workload::probe::{
    compute_tflops, copy_figures, fp32_peak_tflops, launch_latency_us, ComputeKernel, CopyKernel,
    Gpu, TouchKernel,
};
use gpushare::workload::{self, ParamValue, Params};

/// The value, or a panic with the error's message (Display reads better than Debug).
fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("failed: {e}"))
}

fn gpu() -> Arc<Gpu> {
    Gpu::open(0).unwrap_or_else(|e| panic!("failed: {e} (gpu_* tests need a GPU)"))
}

fn params(pairs: &[(&str, ParamValue)]) -> Params {
    Params::from_pairs(pairs)
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("FIGURE {name} {value:.3} {unit}");
}

#[test]
fn gpu_compute_kernel_matches_the_cpu_reference() {
    let gpu = gpu();
    for seed in [1, 2, 3] {
        ok(ok(ComputeKernel::new(&gpu, seed)).verify());
    }
}

#[test]
fn gpu_compute_probe_reaches_80_percent_of_fp32_peak() {
    let gpu = gpu();
    let peak = ok(fp32_peak_tflops(&gpu));
    let measured = ok(compute_tflops(&gpu, 10.0));
    let ratio = measured / peak;
    figure("fp32_peak", peak, "TFLOP/s");
    figure("compute", measured, "TFLOP/s");
    figure("compute_vs_peak", ratio, "ratio");
    assert!(
        ratio >= 0.8,
        "probe.compute reached {measured:.1} TFLOP/s, {ratio:.3} of the {peak:.1} TFLOP/s peak"
    );
    assert!(
        ratio <= 1.05,
        "above peak: the FLOP count or the peak is wrong"
    );
}

#[test]
fn gpu_copy_kernel_matches_the_cpu_reference() {
    let gpu = gpu();
    ok(ok(CopyKernel::new(&gpu, 64_000_000)).verify());
}

#[test]
fn gpu_memory_probe_reaches_90_percent_of_a_device_copy() {
    let gpu = gpu();
    let figures = ok(copy_figures(&gpu, 2_000_000_000));
    let ratio = figures.kernel_gbps / figures.driver_copy_gbps;
    figure("memory", figures.kernel_gbps, "GB/s");
    figure("d2d_copy", figures.driver_copy_gbps, "GB/s");
    figure("memory_vs_d2d_copy", ratio, "ratio");
    assert!(
        ratio >= 0.9,
        "probe.memory moved {:.0} GB/s, {ratio:.3} of cuMemcpyDtoD's {:.0} GB/s",
        figures.kernel_gbps,
        figures.driver_copy_gbps
    );
}

#[test]
fn gpu_touch_kernel_matches_the_cpu_reference() {
    let gpu = gpu();
    ok(ok(TouchKernel::new(&gpu)).verify());
    let latency_us = ok(launch_latency_us(&gpu, 200));
    figure("launch_latency", latency_us, "us");
    assert!(latency_us > 0.0 && latency_us < 1000.0, "{latency_us} us");
}

#[test]
fn gpu_latency_probe_launches_on_its_schedule_and_reports_latency() {
    let p = params(&[("interval_us", ParamValue::Float(1000.0))]);
    let mut w = ok(workload::build("probe.latency", &p, 1));
    ok(w.prepare(Duration::from_millis(100)));
    let start = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let step = ok(w.step());
        assert_eq!(step.items, 1);
        latencies.push(step.latency_s.unwrap());
    }
    let elapsed = start.elapsed();
    // 200 launches 1 ms apart: the last is intended at 199 ms.
    assert!(elapsed >= Duration::from_millis(199), "{elapsed:?}");
    latencies.sort_by(f64::total_cmp);
    let p50_us = latencies[100] * 1e6;
    let p99_us = latencies[198] * 1e6;
    figure("latency_p50_alone", p50_us, "us");
    figure("latency_p99_alone", p99_us, "us");
    // Alone on the GPU a one-warp launch completes in tens of microseconds.
    assert!(latencies[0] > 0.0);
    assert!(p50_us < 1000.0, "median {p50_us} us");
}

fn run_steps(name: &str, p: &Params, n_steps: usize) -> (Vec<Duration>, u64, Option<u64>) {
    let mut w = ok(workload::build(name, p, 7));
    ok(w.prepare(Duration::from_millis(300)));
    let mut times = Vec::new();
    let mut items = 0;
    for _ in 0..n_steps {
        let start = Instant::now();
        let step = ok(w.step());
        times.push(start.elapsed());
        items += step.items;
        assert_eq!(step.latency_s, None);
    }
    times.sort();
    (times, items, w.memory_peak_bytes())
}

#[test]
fn gpu_compute_and_memory_workloads_size_their_steps_to_step_ms() {
    let step_ms = 5.0;
    for (name, extra) in [
        ("probe.compute", vec![]),
        (
            "probe.memory",
            vec![("buffer_mb", ParamValue::Float(1000.0))],
        ),
    ] {
        let mut pairs = vec![("step_ms", ParamValue::Float(step_ms))];
        pairs.extend(extra);
        let (times, items, memory) = run_steps(name, &params(&pairs), 40);
        let median_ms = times[times.len() / 2].as_secs_f64() * 1e3;
        let total_s: f64 = times.iter().map(Duration::as_secs_f64).sum();
        figure(&format!("{name}_step_median"), median_ms, "ms");
        figure(
            &format!("{name}_items_per_s"),
            items as f64 / total_s,
            "items/s",
        );
        assert!(
            median_ms > step_ms * 0.5 && median_ms < step_ms * 2.0,
            "{name}: median step {median_ms:.2} ms for step_ms {step_ms}"
        );
        assert!(items > 0, "{name} counted no items");
        assert!(memory.unwrap() > 0, "{name} reports no memory");
    }
}

#[test]
fn gpu_monitor_samples_while_a_probe_runs() {
    let handle = ok(monitor::start(MonitorConfig {
        interval_ms: 50,
        ..MonitorConfig::default()
    }));
    let p = params(&[("step_ms", ParamValue::Float(10.0))]);
    let mut w = ok(workload::build("probe.compute", &p, 3));
    ok(w.prepare(Duration::from_millis(200)));
    let window_start = Instant::now();
    let mut items = 0;
    while window_start.elapsed() < Duration::from_millis(2000) {
        items += ok(w.step()).items;
    }
    let window = (
        handle.seconds_at(window_start),
        handle.seconds_at(Instant::now()),
    );
    let series = handle.stop();
    for note in &series.notes {
        println!(
            "NOTE {} {:?} x{}: {}",
            note.metric, note.kind, note.count, note.message
        );
    }
    let summary = monitor::summarize(&series, window);
    println!("{summary:?}");
    assert!(summary.n_samples >= 20, "{} samples", summary.n_samples);
    assert!(summary.mean_util_gpu_pct.unwrap() > 50.0);
    assert!(summary.mean_sm_clock_mhz.unwrap() > 0.0);
    assert!(summary.mean_power_w.unwrap() > 0.0);
    let energy_j = summary.energy_j.unwrap();
    assert!(energy_j > 0.0);
    figure("monitor_mean_power", summary.mean_power_w.unwrap(), "W");
    figure(
        "monitor_mean_sm_clock",
        summary.mean_sm_clock_mhz.unwrap(),
        "MHz",
    );
    figure(
        "compute_energy_per_gflop",
        monitor::energy_per_item_j(&summary, items as f64).unwrap(),
        "J/GFLOP",
    );
    if let Some(fraction) = series.sampler_cpu_fraction() {
        figure("monitor_nvml_cpu_at_50ms", fraction * 100.0, "%core");
    }

    let pid = std::process::id();
    let own_rows: Vec<_> = series
        .samples
        .iter()
        .flat_map(|s| s.processes.iter())
        .filter(|p| p.pid == pid)
        .collect();
    assert!(!own_rows.is_empty(), "pid {pid} never listed by NVML");
    assert!(own_rows
        .iter()
        .any(|p| p.memory_used_bytes.unwrap_or(0) > 0));
    // Per-process utilization is either sampled or said to be unsupported, never silent.
    let util_seen = own_rows.iter().any(|p| p.util_sm_pct.is_some());
    let util_noted = series
        .notes
        .iter()
        .any(|n| n.metric == "process_util_sm_pct" && n.kind == NoteKind::Unsupported);
    assert!(
        util_seen || util_noted,
        "no per-process utilization and no note"
    );
}

/// `interactive.notebook` on the GPU: a cell sized to 20 ms of device time comes back in
/// about that (its latency), and the step also sleeps its think time.
#[test]
fn gpu_notebook_cell_latency_is_about_cell_ms() {
    let p = params(&[
        ("think_ms", ParamValue::Float(10.0)),
        ("cell_ms", ParamValue::Float(20.0)),
    ]);
    let mut w = ok(workload::build("interactive.notebook", &p, 3));
    ok(w.prepare(Duration::from_millis(200)));
    let mut latencies_ms = vec![];
    for _ in 0..20 {
        let step = ok(w.step());
        assert_eq!(step.items, 1);
        latencies_ms.push(step.latency_s.unwrap() * 1e3);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let median_ms = latencies_ms[latencies_ms.len() / 2];
    figure("notebook_cell_latency_p50", median_ms, "ms");
    // The launch is sized from two timed launches; a lone tenant's wait adds only the
    // launch and synchronize overhead (microseconds) to the device time.
    assert!(
        (15.0..30.0).contains(&median_ms),
        "median cell latency {median_ms:.2} ms for a 20 ms cell"
    );
}
