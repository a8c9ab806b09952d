//! Probe-level figures on the local GPU: FP32 FMA throughput against the FP32 peak, the
//! copy kernel's bandwidth against cuMemcpyDtoD on the same buffers, and launch-to-
//! completion latency of a one-warp kernel. Kernel times come from CUDA events; the
//! latency is host-timed because the wait for the GPU is what it measures.
//!
//! Without a GPU (or without the `cuda` feature) it prints one line and exits 0.
//! `FIGURE <name> <value> <unit>` lines at the end are for scripts/gpu-check-probes.sh.

fn main() {
    #[cfg(feature = "cuda")]
    {
        if !gpushare::workload::probe::gpu_available() {
            println!("no GPU: skipping probes bench");
            return;
        }
        gpu::run();
    }
    #[cfg(not(feature = "cuda"))]
    println!("no GPU: skipping probes bench (built without the cuda feature)");
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::time::Duration;

    use criterion::{Criterion, Throughput};
    use gpushare::workload::probe::{
        copy_figures, fp32_peak_tflops, launch_latency_us, ComputeKernel, CopyKernel, Gpu,
        TouchKernel,
    };

    /// Each source and destination buffer of the memory benches: 2 GB, about 33 times the
    /// H200's 60 MB L2, so every copy streams from device memory.
    const BUFFER_BYTES: u64 = 2_000_000_000;
    /// Launch length of the compute bench, long enough that launch gaps do not count.
    const COMPUTE_LAUNCH_MS: f64 = 10.0;

    fn duration_ms(ms: f64) -> Duration {
        Duration::from_secs_f64(ms / 1e3)
    }

    pub fn run() {
        let gpu = Gpu::open(0).expect("opening GPU 0");
        let mut c = Criterion::default().configure_from_args();
        let mut group = c.benchmark_group("probes");
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));

        let mut compute = ComputeKernel::new(&gpu, 1).expect("setting up fma_chains");
        compute.verify().expect("checking fma_chains");
        let iters = compute
            .iters_for_ms(COMPUTE_LAUNCH_MS)
            .expect("sizing fma_chains");
        let flop = compute.flop_per_launch(iters);
        group.throughput(Throughput::Elements(flop as u64));
        group.bench_function("compute/fma-fp32", |b| {
            b.iter_custom(|n| {
                let ms = gpu
                    .time_ms(|| (0..n).try_for_each(|_| compute.launch(iters)))
                    .expect("timing fma_chains");
                duration_ms(ms)
            })
        });
        drop(compute);

        let mut copy = CopyKernel::new(&gpu, BUFFER_BYTES).expect("setting up copy_f4");
        copy.verify().expect("checking copy_f4");
        group.throughput(Throughput::BytesDecimal(copy.bytes_per_copy()));
        group.bench_function("memory/copy-kernel", |b| {
            b.iter_custom(|n| {
                let ms = gpu
                    .time_ms(|| (0..n).try_for_each(|_| copy.launch()))
                    .expect("timing copy_f4");
                duration_ms(ms)
            })
        });
        group.bench_function("memory/cuMemcpyDtoD", |b| {
            b.iter_custom(|n| {
                let ms = gpu
                    .time_ms(|| (0..n).try_for_each(|_| copy.launch_driver_copy()))
                    .expect("timing cuMemcpyDtoD");
                duration_ms(ms)
            })
        });
        drop(copy);

        let mut touch = TouchKernel::new(&gpu).expect("setting up touch");
        touch.verify().expect("checking touch");
        group.throughput(Throughput::Elements(1));
        group.bench_function("latency/launch-to-completion", |b| {
            b.iter(|| touch.launch_and_wait().expect("launching touch"))
        });
        group.finish();
        c.final_summary();

        // The same figures through the library's measuring functions, as plain lines.
        let peak = fp32_peak_tflops(&gpu).expect("computing the FP32 peak");
        let tflops = gpushare::workload::probe::compute_tflops(&gpu, COMPUTE_LAUNCH_MS)
            .expect("measuring FP32 throughput");
        let copies = copy_figures(&gpu, BUFFER_BYTES).expect("measuring copy bandwidth");
        let latency_us = launch_latency_us(&gpu, 1000).expect("measuring launch latency");
        let name = gpu.name().unwrap_or_else(|_| "unknown GPU".into());
        println!("{name}: {} SMs", gpu.sm_count());
        println!("FIGURE bench_fp32_peak {peak:.3} TFLOP/s");
        println!("FIGURE bench_compute {tflops:.3} TFLOP/s");
        println!("FIGURE bench_compute_vs_peak {:.3} ratio", tflops / peak);
        println!("FIGURE bench_memory {:.3} GB/s", copies.kernel_gbps);
        println!("FIGURE bench_d2d_copy {:.3} GB/s", copies.driver_copy_gbps);
        println!(
            "FIGURE bench_memory_vs_d2d_copy {:.3} ratio",
            copies.kernel_gbps / copies.driver_copy_gbps
        );
        println!("FIGURE bench_launch_latency {latency_us:.3} us");
    }
}
