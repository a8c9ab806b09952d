#!/usr/bin/env bash
# Checks the GPU probes and the NVML monitor on a GPU machine and prints a short table.
#
# The GPU machine has no Rust toolchain, so this works in two halves:
#
#   scripts/gpu-check-probes.sh build   # on a development machine, from the repo root:
#                                       # builds target/gpu-check/ (about 37 MB): the gpu_*
#                                       # tests as a nextest archive, the cargo-nextest
#                                       # binary, and the release probes/monitor benches
#   scripts/gpu-check-probes.sh run     # on the GPU machine, from a copy of the repo root
#                                       # that carries target/gpu-check/
#
# `run` needs libcuda.so.1 and libnvidia-ml.so.1 (the driver's) and libnvrtc.so.13 (the
# CUDA toolkit's, looked for in /usr/local/cuda/lib64). It writes full logs to $OUT when
# that is set (else target/gpu-check/logs) and ends with the table. Its exit status is
# the tests' status. It changes no GPU setting and starts no daemon. About 2 minutes.
# --no-capture makes nextest run the tests one at a time, as the ratio tests need.
set -euo pipefail

bundle=target/gpu-check

build() {
    rm -rf "$bundle"
    mkdir -p "$bundle"
    cargo nextest archive --release -E 'binary(it)' --archive-file "$bundle/tests.tar.zst"
    cp "$(command -v cargo-nextest)" "$bundle/cargo-nextest"
    # The bench executables' paths, from cargo's build messages.
    cargo bench --no-run --bench probes --bench monitor --message-format=json \
        | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and "bench" in msg["target"]["kind"]:
        shutil.copy(msg["executable"], sys.argv[1] + "/" + msg["target"]["name"] + "-bench")
' "$bundle"
    for f in probes-bench monitor-bench tests.tar.zst cargo-nextest; do
        test -s "$bundle/$f" || { echo "missing $bundle/$f" >&2; exit 1; }
    done
    # Line tables make the benches ~25 MB; the bundle must stay well under what a GPU run
    # can carry (64 MiB), and panics there still name the function without them.
    strip --strip-debug "$bundle/probes-bench" "$bundle/monitor-bench"
    du -sh "$bundle"
    echo "now run on the GPU machine, carrying $bundle: scripts/gpu-check-probes.sh run"
}

run() {
    for f in probes-bench monitor-bench tests.tar.zst cargo-nextest; do
        test -s "$bundle/$f" || { echo "missing $bundle/$f: run 'build' first" >&2; exit 1; }
    done
    local logs="${OUT:-$bundle/logs}"
    mkdir -p "$logs"
    export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export CRITERION_HOME="$logs/criterion"
    export NO_COLOR=1

    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.sm,power.draw,temperature.gpu \
            --format=csv >"$logs/nvidia-smi.csv" 2>&1 || true
    else
        echo "nvidia-smi not found" >"$logs/nvidia-smi.csv"
    fi

    local tests_rc=0
    chmod +x "$bundle/cargo-nextest" "$bundle/probes-bench" "$bundle/monitor-bench"
    "$bundle/cargo-nextest" nextest run --archive-file "$bundle/tests.tar.zst" \
        --workspace-remap "$PWD" -E 'test(/^gpu_/)' --no-capture \
        --no-fail-fast >"$logs/tests.log" 2>&1 || tests_rc=$?
    "$bundle/probes-bench" --bench >"$logs/probes-bench.log" 2>&1 || true
    "$bundle/monitor-bench" --bench >"$logs/monitor-bench.log" 2>&1 || true

    echo "== GPU"
    cat "$logs/nvidia-smi.csv"
    echo "== tests (gpu_*), exit status $tests_rc"
    grep -E '^\s+(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT)' "$logs/tests.log" | sed -E 's/^ +//' \
        | awk '!seen[$0]++' || true
    grep -A1 'panicked at' "$logs/tests.log" | grep -vE '^(--|thread )' | cut -c1-300 | head -20 || true
    echo "== notes the monitor made"
    grep -E '^NOTE ' "$logs/tests.log" | sort -u || true
    echo "== figures (goals: compute_vs_peak >= 0.8, memory_vs_d2d_copy >= 0.9, monitor < 1 %core)"
    cat "$logs/tests.log" "$logs/probes-bench.log" "$logs/monitor-bench.log" \
        | grep -E '^FIGURE ' | awk '{ printf "%-36s %14s  %s\n", $2, $3, $4 }'
    grep -E '^probes/|time:|thrpt:' "$logs/probes-bench.log" | head -16 || true
    grep -E '^no GPU' "$logs/probes-bench.log" "$logs/monitor-bench.log" || true
    return "$tests_rc"
}

case "${1:-}" in
    build) build ;;
    run) run ;;
    *)
        echo "usage: $0 build|run (see the comment at the top of this script)" >&2
        exit 2
        ;;
esac
