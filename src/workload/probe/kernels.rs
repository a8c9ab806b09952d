//! The probes' CUDA C kernels, compiled at run time with NVRTC for the GPU they run on,
//! and the CPU references their results are checked against.
//!
//! This file owns the kernel sources and the exact arithmetic each kernel performs; it
//! must not launch anything (that is the probes' job).

/// Names of the kernels in [`SOURCE`], as `extern "C"` symbols.
pub(crate) const FMA_CHAINS: &str = "fma_chains";
pub(crate) const FMA_CHAINS_FULL: &str = "fma_chains_full";
pub(crate) const FMA_CHAINS_HOLD: &str = "fma_chains_hold";
pub(crate) const COPY_F4: &str = "copy_f4";
pub(crate) const COPY_F4_FULL: &str = "copy_f4_full";

/// The macro the `_full` variants take their blocks per SM from, set at compile time to
/// the GPU's most resident threads per SM over [`BLOCK_THREADS`].
pub(crate) const FULL_BLOCKS_MACRO: &str = "GPUSHARE_FULL_BLOCKS_PER_SM";
pub(crate) const FILL_PATTERN: &str = "fill_pattern";
pub(crate) const TOUCH: &str = "touch";

/// Independent FMA chains per thread in `fma_chains`, and rounds of them per loop
/// iteration. Eight chains per thread keep every FP32 lane busy past the FMA latency
/// (about 4 cycles) with a full SM of warps; sixteen unrolled rounds make the loop's own
/// instructions (compare, increment, branch) about 2% of those issued.
pub(crate) const FMA_CHAINS_PER_THREAD: u64 = 8;
pub(crate) const FMA_ROUNDS_PER_ITER: u64 = 16;

/// Floating-point operations one thread performs per loop iteration of `fma_chains`
/// (an FMA counts two).
pub(crate) const FLOP_PER_THREAD_ITER: u64 = 2 * FMA_CHAINS_PER_THREAD * FMA_ROUNDS_PER_ITER;

/// Threads per block for every probe kernel.
pub(crate) const BLOCK_THREADS: u32 = 256;

/// One translation unit for all probe kernels, so a probe pays for one NVRTC compile.
///
/// - `fma_chains`: each thread runs 8 independent chains `x = fma(x, a, b)`, 16 rounds
///   per iteration, `iters` iterations, and writes the sum of its chains (in a fixed
///   order) so the compiler cannot drop the work and the CPU can check it.
/// - `copy_f4`: a grid-stride copy with 16-byte loads and stores, four independent loads
///   in flight per thread before the first store; the `n % 4` tail is copied by the first
///   threads of the grid.
/// - `fma_chains_full`, `copy_f4_full`: the same bodies with `__launch_bounds__(256,
///   GPUSHARE_FULL_BLOCKS_PER_SM)`, which makes the compiler keep registers low enough
///   that every thread slot of an SM can be resident at once (`occupancy = "full"`).
/// - `fma_chains_hold`: the full variant's grid and results, but after each iteration's
///   rounds every thread waits on the GPU's global timer until 2 us have passed since the
///   iteration began: the blocks hold every thread slot for the launch while mostly
///   waiting, as a persistent kernel polling a flag does (`occupancy = "hold"`).
/// - `fill_pattern`: writes a non-zero, index-dependent pattern (never time on zeros).
/// - `touch`: the latency probe's tiny kernel: one warp writes one word each.
pub(crate) const SOURCE: &str = r#"
#ifndef GPUSHARE_FULL_BLOCKS_PER_SM
#define GPUSHARE_FULL_BLOCKS_PER_SM 8
#endif

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ void
fma_chains_body(float* __restrict__ out, float a, float b, unsigned int iters,
                unsigned long long hold_ns) {
    const unsigned int tid = blockIdx.x * blockDim.x + threadIdx.x;
    const float x_init = (float)(tid & 1023u) * 0.0009765625f;
    float x0 = x_init;
    float x1 = x_init + 0.125f;
    float x2 = x_init + 0.25f;
    float x3 = x_init + 0.375f;
    float x4 = x_init + 0.5f;
    float x5 = x_init + 0.625f;
    float x6 = x_init + 0.75f;
    float x7 = x_init + 0.875f;
    for (unsigned int i = 0; i < iters; ++i) {
        const unsigned long long began = hold_ns ? global_ns() : 0;
#pragma unroll
        for (int r = 0; r < 16; ++r) {
            x0 = fmaf(x0, a, b);
            x1 = fmaf(x1, a, b);
            x2 = fmaf(x2, a, b);
            x3 = fmaf(x3, a, b);
            x4 = fmaf(x4, a, b);
            x5 = fmaf(x5, a, b);
            x6 = fmaf(x6, a, b);
            x7 = fmaf(x7, a, b);
        }
        if (hold_ns) {
            while (global_ns() - began < hold_ns) {
            }
        }
    }
    out[tid] = ((((((x0 + x1) + x2) + x3) + x4) + x5) + x6) + x7;
}

extern "C" __global__ void __launch_bounds__(256)
fma_chains(float* __restrict__ out, float a, float b, unsigned int iters) {
    fma_chains_body(out, a, b, iters, 0);
}

extern "C" __global__ void __launch_bounds__(256, GPUSHARE_FULL_BLOCKS_PER_SM)
fma_chains_full(float* __restrict__ out, float a, float b, unsigned int iters) {
    fma_chains_body(out, a, b, iters, 0);
}

extern "C" __global__ void __launch_bounds__(256, GPUSHARE_FULL_BLOCKS_PER_SM)
fma_chains_hold(float* __restrict__ out, float a, float b, unsigned int iters) {
    fma_chains_body(out, a, b, iters, 2000);
}

__device__ __forceinline__ void
copy_f4_body(const float* __restrict__ src, float* __restrict__ dst, unsigned long long n) {
    const float4* __restrict__ src4 = reinterpret_cast<const float4*>(src);
    float4* __restrict__ dst4 = reinterpret_cast<float4*>(dst);
    const unsigned long long n4 = n / 4;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    const unsigned long long first = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned long long i = first;
    for (; i + 3 * stride < n4; i += 4 * stride) {
        const float4 v0 = src4[i];
        const float4 v1 = src4[i + stride];
        const float4 v2 = src4[i + 2 * stride];
        const float4 v3 = src4[i + 3 * stride];
        dst4[i] = v0;
        dst4[i + stride] = v1;
        dst4[i + 2 * stride] = v2;
        dst4[i + 3 * stride] = v3;
    }
    for (; i < n4; i += stride) {
        dst4[i] = src4[i];
    }
    const unsigned long long tail = n - n4 * 4;
    if (first < tail) {
        dst[n4 * 4 + first] = src[n4 * 4 + first];
    }
}

extern "C" __global__ void __launch_bounds__(256)
copy_f4(const float* __restrict__ src, float* __restrict__ dst, unsigned long long n) {
    copy_f4_body(src, dst, n);
}

extern "C" __global__ void __launch_bounds__(256, GPUSHARE_FULL_BLOCKS_PER_SM)
copy_f4_full(const float* __restrict__ src, float* __restrict__ dst, unsigned long long n) {
    copy_f4_body(src, dst, n);
}

extern "C" __global__ void __launch_bounds__(256)
fill_pattern(float* __restrict__ dst, unsigned long long n, unsigned int seed) {
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < n; i += stride) {
        dst[i] = __fmaf_rn((float)((unsigned int)(i * 2654435761ull) ^ seed), 2.3283064e-10f, 1.0f);
    }
}

extern "C" __global__ void touch(unsigned int* __restrict__ out, unsigned int value) {
    out[threadIdx.x] = value + threadIdx.x;
}
"#;

/// What `fma_chains` writes for global thread `tid`, computed on the CPU with the same
/// fused multiply-adds in the same order, so the GPU result should match to the last bit.
pub(crate) fn fma_chains_reference(tid: u32, a: f32, b: f32, iters: u32) -> f32 {
    let x_init = (tid & 1023) as f32 * 0.000_976_562_5;
    let mut x = [0.0f32; FMA_CHAINS_PER_THREAD as usize];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = x_init + 0.125 * k as f32;
    }
    for _ in 0..iters {
        for _ in 0..FMA_ROUNDS_PER_ITER {
            for xk in x.iter_mut() {
                *xk = xk.mul_add(a, b);
            }
        }
    }
    x[1..].iter().fold(x[0], |sum, xk| sum + xk)
}

/// What `fill_pattern` writes at index `i`, with the kernel's integer steps and its one
/// explicit fused multiply-add.
pub(crate) fn fill_pattern_reference(i: u64, seed: u32) -> f32 {
    let hashed = (i.wrapping_mul(2_654_435_761) as u32) ^ seed;
    (hashed as f32).mul_add(2.328_306_4e-10, 1.0)
}

/// What `touch` writes for thread `lane`.
pub(crate) fn touch_reference(lane: u32, value: u32) -> u32 {
    value.wrapping_add(lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fma_reference_with_no_iterations_sums_the_initial_chains() {
        // x_init = 0 for tid 0: the chains start at 0, 0.125, ..., 0.875.
        assert_eq!(fma_chains_reference(0, 0.5, 0.25, 0), 3.5);
    }

    #[test]
    fn fma_reference_converges_to_the_fixed_point() {
        // x = 0.5 x + 0.5 has the fixed point 1; after many rounds every chain is 1.
        let sum = fma_chains_reference(7, 0.5, 0.5, 20);
        assert!((sum - 8.0).abs() < 1e-6, "sum {sum}");
    }

    #[test]
    fn fill_pattern_is_non_zero_and_varies_with_the_index() {
        let values: Vec<f32> = (0..64).map(|i| fill_pattern_reference(i, 12345)).collect();
        assert!(values.iter().all(|v| *v >= 1.0 && *v < 2.0));
        let distinct: std::collections::BTreeSet<u32> =
            values.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > 60);
    }

    #[test]
    fn flop_per_thread_iteration_counts_each_fma_twice() {
        assert_eq!(FLOP_PER_THREAD_ITER, 256);
    }

    #[test]
    fn kernel_source_declares_every_kernel_it_names() {
        for name in [
            FMA_CHAINS,
            FMA_CHAINS_FULL,
            FMA_CHAINS_HOLD,
            COPY_F4,
            COPY_F4_FULL,
            FILL_PATTERN,
            TOUCH,
        ] {
            assert!(SOURCE.contains(&format!("{name}(")), "{name} missing");
        }
        assert!(SOURCE.contains(&format!("#ifndef {FULL_BLOCKS_MACRO}")));
    }
}
