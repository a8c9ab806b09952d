#!/usr/bin/env python3
"""Independent check of co-tenant occupancy under MPS, written apart from gpushare (CuPy).

Question: next to a co-tenant whose 20 ms launches hold every thread slot of every SM,
does a one-warp launch from another MPS client wait for the launch to end (about 20 ms),
or does it start beside it? gpushare's `occupancy-mps` scenario measured no wait for
either launch shape of `probe.compute` (0.093 ms P50 under MPS), while an earlier
independent probe saw 20 ms. This script settles which launch property decides it by
recording, inside the kernels, the SM (`%smid`) and the GPU's global timer
(`%globaltimer`) of every co-tenant block and of every one-warp launch, so it can tell
whether the warp ran on an SM while a co-tenant block was resident there.

Variants (each a co-tenant process and a latency process, both MPS clients of one
private daemon that this script starts and quits):
  fma-sync     gpushare's shape: FMA chains, 256-thread blocks, as many per SM as fill
               the SM's thread slots, one launch at a time (launch, wait, launch)
  spin-sync    the same grid, but each block spins on the global timer for the launch
               length instead of computing
  fma-queued   the FMA grid with two launches in flight (the next is queued before the
               current one ends, as a framework's stream of kernels is)
  spin-queued  the spin grid, two launches in flight

It also prints the register use of gpushare's own probe kernels
(`fma_chains`, `fma_chains_full`), compiled from src/workload/probe/kernels.rs.

Usage (GPU machine, repository root): python3 bench/occupancy/diagnose.py [--seconds 4]
  [--launch-ms 20] [--interval-ms 1] [--json OUT.json] [--variants fma-sync,spin-sync,...]
Changes no GPU setting; the daemon runs in private directories and is quit at the end.
"""

import argparse
import bisect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

KERNELS = r"""
__device__ __forceinline__ unsigned long long now_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ unsigned int sm_id() {
    unsigned int s;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
    return s;
}

// mode 0: 8 FMA chains per thread for `iters` iterations; mode 1: spin for `spin_ns`.
// Thread 0 of each block records (smid, start, end) in rec[3 * block ..].
extern "C" __global__ void __launch_bounds__(256)
cotenant(float* out, unsigned long long* rec, float a, float b, unsigned int iters,
         long long spin_ns, int mode) {
    const unsigned long long t0 = now_ns();
    const unsigned int tid = blockIdx.x * blockDim.x + threadIdx.x;
    float x0 = (float)(tid & 1023u) * 0.0009765625f, x1 = x0 + 0.125f, x2 = x0 + 0.25f,
          x3 = x0 + 0.375f, x4 = x0 + 0.5f, x5 = x0 + 0.625f, x6 = x0 + 0.75f,
          x7 = x0 + 0.875f;
    if (mode == 0) {
        for (unsigned int i = 0; i < iters; ++i) {
#pragma unroll
            for (int r = 0; r < 16; ++r) {
                x0 = fmaf(x0, a, b); x1 = fmaf(x1, a, b); x2 = fmaf(x2, a, b);
                x3 = fmaf(x3, a, b); x4 = fmaf(x4, a, b); x5 = fmaf(x5, a, b);
                x6 = fmaf(x6, a, b); x7 = fmaf(x7, a, b);
            }
        }
    } else {
        while ((long long)(now_ns() - t0) < spin_ns) {
            x0 = fmaf(x0, a, b);
        }
    }
    out[tid] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    __syncthreads();
    if (threadIdx.x == 0) {
        rec[3 * blockIdx.x] = sm_id();
        rec[3 * blockIdx.x + 1] = t0;
        rec[3 * blockIdx.x + 2] = now_ns();
    }
}

// One warp; lane 0 records (smid, start) of this launch.
extern "C" __global__ void touch(unsigned long long* rec, unsigned int slot) {
    if (threadIdx.x == 0) {
        rec[2 * slot] = sm_id();
        rec[2 * slot + 1] = now_ns();
    }
}
"""

VARIANTS = {
    "fma-sync": (0, 1),
    "spin-sync": (1, 1),
    "fma-queued": (0, 2),
    "spin-queued": (1, 2),
}


def cotenant(args):
    import cupy as cp

    mode, depth = VARIANTS[args.variant]
    dev = cp.cuda.Device(0)
    sms = dev.attributes["MultiProcessorCount"]
    per_sm = dev.attributes["MaxThreadsPerMultiProcessor"] // 256
    grid = sms * per_sm
    mod = cp.RawModule(code=KERNELS)
    fn = mod.get_function("cotenant")
    out = cp.zeros(grid * 256, dtype=cp.float32)
    recs = [cp.zeros(grid * 3, dtype=cp.uint64) for _ in range(depth)]
    spin_ns = int(args.launch_ms * 1e6)

    def launch(iters, k=0):
        fn((grid,), (256,), (out, recs[k], cp.float32(0.999), cp.float32(0.001), cp.uint32(iters),
                             cp.int64(spin_ns), cp.int32(mode)))

    iters = 256
    if mode == 0:  # calibrate the FMA launch to launch_ms
        for _ in range(3):
            start, end = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            launch(iters)
            end.record()
            end.synchronize()
            ms = cp.cuda.get_elapsed_time(start, end)
            iters = max(1, int(iters * args.launch_ms / ms))
    launch(iters)
    dev.synchronize()
    records = []
    deadline = time.monotonic() + args.seconds
    launches = 0
    while time.monotonic() < deadline:
        for k in range(depth):
            launch(iters, k)
            launches += 1
        dev.synchronize()
        for rec in recs:
            records.append(rec.get().reshape(-1, 3).tolist())
    json.dump({"grid": grid, "blocks_per_sm": per_sm, "sms": sms, "launches": launches,
               "num_regs": fn.num_regs, "blocks": [b for r in records for b in r]},
              open(args.record, "w"))


def latency(args):
    import cupy as cp

    dev = cp.cuda.Device(0)
    mod = cp.RawModule(code=KERNELS)
    fn = mod.get_function("touch")
    n = int(args.seconds * 1000 / args.interval_ms) + 16
    rec = cp.zeros(2 * n, dtype=cp.uint64)
    fn((1,), (32,), (rec, cp.uint32(0)))
    dev.synchronize()
    interval = args.interval_ms / 1e3
    waits = []
    host_ns = []
    t = time.monotonic() + 0.5  # let the co-tenant start
    for slot in range(n - 16):
        while time.monotonic() < t:
            pass
        fn((1,), (32,), (rec, cp.uint32(slot)))
        dev.synchronize()
        waits.append((time.monotonic() - t) * 1e3)
        host_ns.append(time.monotonic_ns())
        t += interval
        now = time.monotonic()
        if now > t + 1.0:
            break
    r = rec.get().reshape(-1, 2)[: len(waits)]
    json.dump({"waits_ms": waits, "touch": r.tolist()}, open(args.record, "w"))


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def analyse(variant, co, lat):
    # A touch launch ran beside the co-tenant if a co-tenant block was resident on the same
    # SM at its start time.
    by_sm = {}
    for sm, t0, t1 in co["blocks"]:
        by_sm.setdefault(sm, []).append((t0, t1))
    for spans in by_sm.values():
        spans.sort()
    lo = min(t0 for _, t0, _ in co["blocks"])
    hi = max(t1 for _, _, t1 in co["blocks"])
    beside = 0
    counted = 0
    for sm, t in lat["touch"]:
        if not (lo <= t <= hi):
            continue
        counted += 1
        spans = by_sm.get(sm, [])
        i = bisect.bisect_right(spans, (t, float("inf")))
        # Spans are sorted by start; at most a few dozen blocks share an SM at once.
        if any(t0 <= t <= t1 for t0, t1 in spans[max(0, i - 64):i]):
            beside += 1
    per_sm = {}
    for sm, _, _ in co["blocks"][: co["grid"]]:
        per_sm[sm] = per_sm.get(sm, 0) + 1
    starts = sorted(t0 for _, t0, _ in co["blocks"][-co["grid"]:])
    waits = lat["waits_ms"]
    return {
        "variant": variant,
        "cotenant_grid": co["grid"],
        "cotenant_blocks_per_sm_asked": co["blocks_per_sm"],
        "cotenant_regs_per_thread": co["num_regs"],
        "cotenant_sms_used": len(per_sm),
        "cotenant_max_blocks_on_one_sm": max(per_sm.values()),
        "cotenant_block_start_spread_us": (starts[-1] - starts[0]) / 1e3,
        "cotenant_launches": co["launches"],
        "touch_launches": len(waits),
        "touch_p50_ms": percentile(waits, 0.5),
        "touch_p99_ms": percentile(waits, 0.99),
        "touch_in_recorded_span": counted,
        "touch_beside_a_resident_block": beside,
    }


def blocks_by_registers(regs, device):
    """256-thread blocks per SM that the register file and thread slots allow, with
    registers allocated per warp in units of 256 (8 per thread); shared memory is unused."""
    per_thread = -(-max(regs, 1) // 8) * 8
    by_registers = device["regs_per_sm"] // (per_thread * 256)
    return min(by_registers, device["max_threads_per_sm"] // 256)


def own_kernels():
    """Register use of gpushare's probe kernels, compiled by CuPy, and the blocks per SM
    that it allows."""
    import cupy as cp

    here = os.path.dirname(os.path.abspath(__file__))
    src = open(os.path.join(here, "..", "..", "src", "workload", "probe", "kernels.rs")).read()
    m = re.search(r'pub\(crate\) const SOURCE: &str = r#"(.*?)"#;', src, re.S)
    if not m:
        return {"error": "SOURCE not found in kernels.rs"}
    dev = cp.cuda.Device(0)
    per_sm = dev.attributes["MaxThreadsPerMultiProcessor"] // 256
    mod = cp.RawModule(code=m.group(1), options=(f"-DGPUSHARE_FULL_BLOCKS_PER_SM={per_sm}",))
    result = {"max_threads_per_sm": dev.attributes["MaxThreadsPerMultiProcessor"],
              "regs_per_sm": dev.attributes["MaxRegistersPerMultiprocessor"],
              "sms": dev.attributes["MultiProcessorCount"]}
    for name in ("fma_chains", "fma_chains_full", "copy_f4", "copy_f4_full"):
        regs = mod.get_function(name).num_regs
        result[name] = {"regs_per_thread": regs,
                        "blocks_per_sm_256_by_registers": blocks_by_registers(regs, result)}
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=["driver", "cotenant", "latency"], default="driver")
    p.add_argument("--variant", default="fma-sync")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--launch-ms", type=float, default=20.0)
    p.add_argument("--interval-ms", type=float, default=1.0)
    p.add_argument("--record")
    p.add_argument("--json")
    args = p.parse_args()
    if args.role == "cotenant":
        return cotenant(args)
    if args.role == "latency":
        return latency(args)

    print("gpushare's probe kernels:", json.dumps(own_kernels()), flush=True)
    tmp = tempfile.mkdtemp(prefix="gs-occupancy-")
    env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=f"{tmp}/pipe", CUDA_MPS_LOG_DIRECTORY=f"{tmp}/log")
    os.makedirs(env["CUDA_MPS_PIPE_DIRECTORY"])
    os.makedirs(env["CUDA_MPS_LOG_DIRECTORY"])
    subprocess.run(["nvidia-cuda-mps-control", "-d"], env=env, check=True)
    results = []
    try:
        for variant in args.variants.split(","):
            co_rec, lat_rec = f"{tmp}/{variant}-co.json", f"{tmp}/{variant}-lat.json"
            common = [sys.executable, __file__, "--variant", variant, "--launch-ms", str(args.launch_ms),
                      "--interval-ms", str(args.interval_ms)]
            co = subprocess.Popen(common + ["--role", "cotenant", "--seconds", str(args.seconds + 2),
                                            "--record", co_rec], env=env)
            time.sleep(1.5)  # CuPy import, compile, calibration
            lat = subprocess.run(common + ["--role", "latency", "--seconds", str(args.seconds),
                                           "--record", lat_rec], env=env)
            co.wait()
            if co.returncode or lat.returncode:
                print(f"{variant}: a client failed ({co.returncode}, {lat.returncode})", flush=True)
                continue
            row = analyse(variant, json.load(open(co_rec)), json.load(open(lat_rec)))
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        subprocess.run(["nvidia-cuda-mps-control"], input=b"quit\n", env=env)
        time.sleep(2)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'variant':<12} {'grid':>5} {'regs':>4} {'blk/SM':>6} {'spread us':>9} "
          f"{'P50 ms':>7} {'P99 ms':>7} {'beside/in span':>14}")
    for r in results:
        print(f"{r['variant']:<12} {r['cotenant_grid']:>5} {r['cotenant_regs_per_thread']:>4} "
              f"{r['cotenant_max_blocks_on_one_sm']:>6} {r['cotenant_block_start_spread_us']:>9.1f} "
              f"{r['touch_p50_ms']:>7.3f} {r['touch_p99_ms']:>7.3f} "
              f"{r['touch_beside_a_resident_block']:>6}/{r['touch_in_recorded_span']:<7}")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
