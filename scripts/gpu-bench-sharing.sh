#!/usr/bin/env bash
# Runs the sharing-mode benches (mps, timeslice, mig) on a GPU machine that has no Rust
# toolchain, in two halves:
#
#   scripts/gpu-bench-sharing.sh build            # development machine, repository root:
#                                                 # the release gpushare binary and the
#                                                 # three bench executables, stripped,
#                                                 # into target/gpu-bench/ (about 20 MB)
#   scripts/gpu-bench-sharing.sh run [BENCH...]   # GPU machine, a copy of the repository
#                                                 # root that carries target/gpu-bench/
#
# `run` runs the named benches one after another (default: mps, whose study already
# covers timeslice's two modes, then mig). The bundle's gpushare binary runs the workers
# (GPUSHARE_BIN); each study goes to $OUT/bench-<name>-<timestamp>/ (else
# target/gpu-bench/results/), with the bench's full output beside it as <name>.log. About
# 5.5 minutes for mps; mig prints one line and exits 0 while MIG is off. It changes no GPU
# setting; the MPS daemons the benches start are private to each run and stopped by it.
# Its exit status is the first failing bench's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bundle=target/gpu-bench
benches=(mps timeslice mig)

build() {
    rm -rf "$bundle"
    mkdir -p "$bundle"
    cargo build --release --bin gpushare
    cp target/release/gpushare "$bundle/gpushare"
    # The bench executables' paths (target/release/deps/<name>-<hash>), from cargo's
    # build messages.
    cargo bench --no-run "${benches[@]/#/--bench=}" --message-format=json \
        | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and "bench" in msg["target"]["kind"]:
        shutil.copy(msg["executable"], sys.argv[1] + "/" + msg["target"]["name"] + "-bench")
' "$bundle"
    local name
    for name in gpushare "${benches[@]/%/-bench}"; do
        test -s "$bundle/$name" || { echo "missing $bundle/$name" >&2; exit 1; }
    done
    # Line tables make each executable ~20 MB; what a GPU run carries is limited.
    strip --strip-debug "$bundle"/*
    du -sh "$bundle"
    echo "now run on the GPU machine, carrying $bundle: scripts/gpu-bench-sharing.sh run"
}

run() {
    local chosen=("$@")
    if [ ${#chosen[@]} -eq 0 ]; then
        chosen=(mps mig)
    fi
    local out="${OUT:-$bundle/results}" status=0 bench rc
    mkdir -p "$out"
    export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export GPUSHARE_BIN="$PWD/$bundle/gpushare"
    export GPUSHARE_RESULTS_DIR="$out"
    export CRITERION_HOME="$out/criterion"
    export NO_COLOR=1
    chmod +x "$bundle"/*
    for bench in "${chosen[@]}"; do
        test -x "$bundle/$bench-bench" || { echo "no $bundle/$bench-bench: run 'build' first" >&2; exit 2; }
        rc=0
        "$bundle/$bench-bench" --bench >"$out/$bench.log" 2>&1 || rc=$?
        echo "== $bench: exit status $rc (full output: $out/$bench.log)"
        # Criterion's progress lines say nothing the results below them do not.
        grep -vE '^(Benchmarking |Gnuplot not found|$)' "$out/$bench.log" | tail -n 120 || true
        if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
            status=$rc
        fi
    done
    return "$status"
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    *)
        echo "usage: $0 build | run [mps|timeslice|mig ...] (see the top of this script)" >&2
        exit 2
        ;;
esac
