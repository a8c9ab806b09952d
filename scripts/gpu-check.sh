#!/usr/bin/env bash
# Checks gpushare on a GPU machine: the gpu_* tests (sharing modes with a real MPS
# daemon, probes against their CPU references and ratio goals, the NVML monitor), the
# probe, monitor and harness benches, `gpushare doctor`, and the shipped probes-mix
# study through the real runner. Prints a short summary.
#
# The GPU machine has no Rust toolchain, so this works in two halves:
#
#   scripts/gpu-check.sh build   # development machine, repository root: release test and
#                                # bench executables and gpushare, stripped, into
#                                # target/gpu-check/ (about 45 MB)
#   scripts/gpu-check.sh run [--bench-probes] [--sharing-only]
#                                # GPU machine, repository root, carrying target/gpu-check;
#                                # --sharing-only: doctor, the gpu_sharing tests and the
#                                # monitor bench (no probe tests, harness bench or study)
#   scripts/gpu-check.sh build-torch  # development machine: the same with the `torch`
#                                # feature (gpushare, the test executable and the
#                                # torch_throughput example) into target/gpu-check-torch/
#   scripts/gpu-check.sh torch [--compare]
#                                # GPU machine, carrying target/gpu-check-torch: `doctor`,
#                                # the gpu_* torch tests, the harness overhead on ResNet-50
#                                # training, and with --compare every model against
#                                # PyTorch eager (bench/reference/compare.sh)
#   scripts/gpu-check.sh compare # GPU machine: only the comparison with PyTorch eager
#   scripts/gpu-check.sh study SCENARIO [RUN FLAGS...]
#                                # GPU machine: a shipped scenario through the torch build
#                                # of gpushare, results to $OUT/<scenario>/
#   scripts/gpu-check.sh measure [--dry-run] [occupancy] [interval] [scaling] [serve-scaling]
#                                # GPU machine, carrying target/gpu-check-torch: the
#                                # occupancy-mps scenario (1 repetition), the interval
#                                # sweep, and the ResNet-50 scaling study (1-16 replicas,
#                                # 3 s windows); serve-scaling (BERT-base services 1-16,
#                                # about 5 minutes) only when named. Stops starting new
#                                # studies after MEASURE_BUDGET_S (450) and interrupts a
#                                # running one at the budget (its runs so far are kept).
#                                # One $OUT/measure-<phase>.tar.gz per study, a summary in
#                                # $OUT/measure-summary.txt. --dry-run checks the plans
#                                # (--strict) and runs nothing; MEASURE_BIN replaces the
#                                # torch build (for a dry run on a development machine).
#   scripts/gpu-check.sh bench-timed [probes|mixes|all]
#                                # GPU machine, carrying target/gpu-check-torch (which
#                                # holds the mps bench built with torch): the standard
#                                # matrix of `cargo bench --features torch --bench mps`,
#                                # or one half of it (probes: about 3.5 min; mixes: about
#                                # 6), with its wall time; results in
#                                # $OUT/bench-mps-<part>.tar.gz
#   scripts/gpu-check.sh compare-repeated [a|b|c|all|N...]
#                                # GPU machine: bench/reference/compare.sh, 3 alternating
#                                # rounds per configuration, for configurations 1-4 (a),
#                                # 5-8 (b), 9-12 (c), all, or the numbers given (see
#                                # `bench/reference/compare.sh --list`); about 5 min a part
#   scripts/gpu-check.sh serve-graphs [resnet50|bert-base]
#                                # GPU machine, carrying target/gpu-check-torch: the CUDA
#                                # graph tests (gpu_*graph*), then bench/serve/side-by-side.sh
#                                # for one model (default resnet50) eager and with
#                                # --cuda-graphs, against infer.batch eager and as a graph,
#                                # 3 repetitions, server and load on separate CPUs (about
#                                # 7 minutes for resnet50, 5 for bert-base); results in
#                                # $OUT/serve-graphs-<model>/side-by-side/
#   scripts/gpu-check.sh bench [mps|timeslice|mig ...]
#                                # GPU machine: the sharing-mode benches (default: mps,
#                                # whose study covers timeslice's modes, then mig); each
#                                # study goes to $OUT/bench-<name>-<stamp>/, its output to
#                                # $OUT/<name>.log. About 5.5 minutes for mps.
#
# `run` changes no GPU setting. MPS daemons are started only by the tests and the study,
# in private directories, and any left behind are quit and then killed by pid. Full logs
# and the study's results go to $OUT (else target/gpu-check/logs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bundle=target/gpu-check
torch_bundle=target/gpu-check-torch

die() {
    echo "gpu-check: $*" >&2
    exit 1
}

# Copies the executables cargo reports building (JSON messages on stdin) as NAME-KIND.
collect() {
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    exe = msg.get("executable") if msg.get("reason") == "compiler-artifact" else None
    kind = msg.get("target", {}).get("kind", [""])[0]
    if exe and kind in ("test", "bench"):
        shutil.copy(exe, sys.argv[1] + "/" + msg["target"]["name"] + "-" + kind)
' "${1:-$bundle}"
}

build() {
    rm -rf "$bundle"
    mkdir -p "$bundle"
    cargo test --release --no-run --test it --message-format=json | collect
    cargo bench --no-run --message-format=json | collect
    # Last, so no other profile's build of the binary can replace it.
    cargo build --release --bin gpushare
    cp target/release/gpushare "$bundle/gpushare-bin"
    strip --strip-debug "$bundle"/*
    du -sh "$bundle"
    ls "$bundle"
}

# Pids of MPS control daemons and servers, by argv[0] (comm is cut to 15 bytes).
mps_pids() {
    local proc arg0
    for proc in /proc/[0-9]*; do
        arg0=$(tr '\0' '\n' 2>/dev/null <"$proc/cmdline" | head -n 1) || continue
        case "${arg0##*/}" in
            nvidia-cuda-mps-control | nvidia-cuda-mps-server) echo "${proc#/proc/}" ;;
        esac
    done
}

# Quits, then kills, MPS processes started from private gpushare directories.
cleanup_mps() {
    local pid pipe
    for pid in $(mps_pids); do
        pipe=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^CUDA_MPS_PIPE_DIRECTORY=//p') || continue
        case "$pipe" in
            */gpushare-mps-* | */gs-foreign-*)
                echo quit | CUDA_MPS_PIPE_DIRECTORY=$pipe nvidia-cuda-mps-control >/dev/null 2>&1 || true
                sleep 3
                kill -9 "$pid" 2>/dev/null || true
                echo "gpu-check: cleaned up MPS process $pid ($pipe)" >&2
                ;;
        esac
    done
}

build_torch() {
    rm -rf "$torch_bundle"
    mkdir -p "$torch_bundle"
    local with=scripts/with-libtorch.sh
    $with cargo test --release --features torch --no-run --test it --message-format=json | collect "$torch_bundle"
    $with cargo bench --features torch --bench mps --no-run --message-format=json | collect "$torch_bundle"
    $with cargo build --release --features torch --bin gpushare --example torch_throughput
    cp target/release/gpushare "$torch_bundle/gpushare-bin"
    cp target/release/examples/torch_throughput "$torch_bundle/torch_throughput"
    strip --strip-debug "$torch_bundle"/*
    du -sh "$torch_bundle"
    ls "$torch_bundle"
}

# libtorch from the GPU machine's Python torch, and CUDA's libraries, for the torch build.
torch_env() {
    [ -x "$torch_bundle/gpushare-bin" ] || die "no $torch_bundle/gpushare-bin: run '$0 build-torch' on the development machine"
    local torch_lib
    torch_lib=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__) + "/lib")') \
        || die "python3 cannot import torch, whose libtorch the torch build uses"
    export LD_LIBRARY_PATH="$torch_lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export NO_COLOR=1
}

# The bare training loop (torch_throughput) against the same job as a gpushare tenant, three
# times each: the harness's overhead on a real model.
harness_overhead() {
    local logs=$1
    : >"$logs/overhead-bare.jsonl"
    for _ in 1 2 3; do
        "$torch_bundle/torch_throughput" --model resnet50 --mode train --precision fp32 \
            --batch-size 64 --warmup-steps 30 --steps 300 --json >>"$logs/overhead-bare.jsonl"
    done
    cat >"$logs/overhead.toml" <<'TOML'
name = "resnet50-overhead"
description = "ResNet-50 fp32 training, batch 64, alone: the harness-overhead comparison."

[run]
warmup_s = 5.0
duration_s = 10.0
repetitions = 3
min_samples = 50
ready_timeout_s = 120

[[modes]]
mode = "exclusive"

[[tenants]]
name = "resnet"
workload = "train.resnet50"
params = { batch_size = 64, precision = "fp32" }
TOML
    "$torch_bundle/gpushare-bin" run "$logs/overhead.toml" --out "$logs/overhead" --force \
        --format json >"$logs/overhead-report.json" 2>"$logs/overhead.err" || return 1
    python3 - "$logs" <<'PY'
import json, statistics, sys
logs = sys.argv[1]
bare = [json.loads(l)["throughput_items_per_s"] for l in open(logs + "/overhead-bare.jsonl") if l.strip()]
report = json.load(open(logs + "/overhead-report.json"))
tenant = [t["throughput_items_per_s"] for run in report["analysis"]["runs"] for t in run["tenants"]]
print("bare loop img/s:", " ".join(f"{x:.1f}" for x in bare))
print("as tenant img/s:", " ".join(f"{x:.1f}" for x in tenant))
if bare and tenant:
    ratio = statistics.mean(tenant) / statistics.mean(bare)
    print(f"FIGURE harness_overhead_resnet50_train {ratio:.4f} (tenant mean / bare mean; goal >= 0.99)")
PY
}

# Runs the torch build's gpu_* tests of torch_models and serve_torch whose name after the
# module matches $1 (a regex; '' for all), one at a time, logging to $2, and prints their
# results and panics. Fails when any failed.
torch_gpu_tests() {
    local pattern=$1 log=$2 rc=0 test
    : >"$log"
    for test in $("$torch_bundle/it-test" --list gpu_ 2>/dev/null | sed -n 's/: test$//p' \
        | grep -E "^(torch_models|serve_torch)::${pattern}"); do
        watched_test "$torch_bundle/it-test" 240 "$test" "$log" || rc=1
    done
    grep -E '^test .* \.\.\. |^test result|still running after' "$log" || true
    grep -A3 'panicked at' "$log" | cut -c1-300 | head -30 || true
    return "$rc"
}

torch_check() {
    torch_env
    local logs="${OUT:-$torch_bundle/logs}" rc=0
    mkdir -p "$logs"
    echo "== doctor (torch build)"
    "$torch_bundle/gpushare-bin" doctor || rc=1
    echo "== gpu_* torch tests (one at a time)"
    torch_gpu_tests '' "$logs/torch-tests.log" || rc=1
    grep -E '^(FIGURE|NOTE) ' "$logs/torch-tests.log" | sort -u || true
    echo "== harness overhead: ResNet-50 training, bare loop vs gpushare tenant"
    harness_overhead "$logs" || rc=1
    if [ "${1:-}" = --compare ]; then
        compare || rc=1
    fi
    return "$rc"
}

# Every model's training and inference through gpushare's torch job and PyTorch eager.
compare() {
    torch_env
    local logs="${OUT:-$torch_bundle/logs}"
    mkdir -p "$logs"
    echo "== every model: gpushare's torch job vs PyTorch eager"
    bench/reference/compare.sh "$torch_bundle/torch_throughput" --steps 40 \
        >"$logs/compare.txt" 2>"$logs/compare.jsonl" || return 1
    cat "$logs/compare.txt"
}

# Runs one scenario through the torch build; its report and results go to $OUT/<name>/.
study() {
    [ $# -ge 1 ] || die "usage: $0 study SCENARIO [RUN FLAGS...]"
    torch_env
    local name=$1 logs="${OUT:-$torch_bundle/logs}" rc=0
    shift
    mkdir -p "$logs"
    before=$(mps_pids | tr '\n' ' ')
    [ -z "$before" ] || die "MPS processes already run ($before); not starting"
    trap cleanup_mps EXIT
    "$torch_bundle/gpushare-bin" run "$name" --out "$logs/$(basename "$name" .toml)" --force "$@" \
        >"$logs/$(basename "$name" .toml).txt" 2>"$logs/$(basename "$name" .toml).err" || rc=$?
    cat "$logs/$(basename "$name" .toml).txt"
    tail -n 5 "$logs/$(basename "$name" .toml).err"
    cleanup_mps
    trap - EXIT
    echo "== $name: exit status $rc; MPS processes left: $(mps_pids | tr '\n' ' ')"
    return "$rc"
}

# Runs test $3 of test executable $1 in its own process for at most $2 seconds, logging to $4. If it is still running after
# that, logs the process tree with each thread's kernel wait channel (where it is stuck),
# then kills it and returns 1.
watched_test() {
    local exe=$1 limit=$2 test=$3 log=$4 pid waited=0
    "$exe" --exact "$test" --nocapture >>"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$limit" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        {
            echo "gpu-check: $test still running after ${limit} s; processes:"
            ps -eo pid,ppid,pgid,stat,etimes,wchan:30,args --forest || true
            local task
            for task in /proc/[0-9]*/task/[0-9]*; do
                case "$(tr '\0' ' ' <"${task%/task/*}/cmdline" 2>/dev/null)" in
                    *it-test* | *nvidia-cuda-mps*)
                        echo "  thread ${task##*/} of ${task%/task/*}: $(cat "$task/comm" 2>/dev/null) state $(awk '{print $3}' "$task/stat" 2>/dev/null) wchan $(cat "$task/wchan" 2>/dev/null)"
                        ;;
                esac
            done
        } >>"$log" 2>&1
        pkill -9 -P "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "test $test ... TIMED OUT after ${limit} s" >>"$log"
        return 1
    fi
    wait "$pid"
}

run() {
    [ -x "$bundle/gpushare-bin" ] || die "no $bundle/gpushare-bin: run '$0 build' on the development machine"
    local logs="${OUT:-$bundle/logs}" rc=0 before bench_probes=no sharing_only=no flag
    for flag in "${@:2}"; do
        case "$flag" in
            --bench-probes) bench_probes=yes ;;
            --sharing-only) sharing_only=yes ;;
            *) die "run: unknown flag $flag (--bench-probes, --sharing-only)" ;;
        esac
    done
    mkdir -p "$logs"
    before=$(mps_pids | tr '\n' ' ')
    [ -z "$before" ] || die "MPS processes already run ($before); not starting"
    export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # Criterion writes many files; $OUT brings back only a few.
    export CRITERION_HOME=/tmp/gpu-check-criterion NO_COLOR=1
    trap cleanup_mps EXIT

    echo "== GPU"
    nvidia-smi --query-gpu=name,driver_version,compute_mode,mig.mode.current,clocks.max.sm --format=csv,noheader || true
    echo "== doctor"
    "$bundle/gpushare-bin" doctor || rc=1

    echo "== gpu_* tests (one at a time)"
    # The killed-runner test runs this gpushare, not cargo's.
    export GPUSHARE_BIN="$PWD/$bundle/gpushare-bin"
    # Each sharing test in a process of its own, before anything else: a process that
    # already holds a CUDA context (an earlier test's) keeps MPS clients from connecting.
    local test
    : >"$logs/tests.log"
    for test in $("$bundle/it-test" --list gpu_sharing::gpu_ 2>/dev/null | sed -n 's/: test$//p'); do
        watched_test "$bundle/it-test" 45 "$test" "$logs/tests.log" || rc=1
        cleanup_mps
    done
    cleanup_mps
    if [ "$sharing_only" = no ]; then
        timeout 120 "$bundle/it-test" --test-threads=1 --nocapture gpu_probes::gpu_ >>"$logs/tests.log" 2>&1 || rc=1
    fi
    grep -E '^test .* \.\.\. |^test result|^\[client |still running after' "$logs/tests.log" || true
    grep -A2 'panicked at' "$logs/tests.log" | cut -c1-300 | head -30 || true
    grep -E '^(FIGURE|SMs:|NOTE) ' "$logs/tests.log" | sort -u || true
    cleanup_mps

    echo "== benches"
    local quick=(--bench --warm-up-time 1 --measurement-time 3)
    # The probe figures come from the gpu_probes tests; its criterion bench runs with
    # `--bench-probes` only, to save GPU time.
    if [ "$bench_probes" = yes ]; then
        timeout 120 "$bundle/probes-bench" "${quick[@]}" >"$logs/probes-bench.log" 2>&1 || rc=1
    fi
    timeout 60 "$bundle/monitor-bench" "${quick[@]}" >"$logs/monitor-bench.log" 2>&1 || rc=1
    if [ "$sharing_only" = no ]; then
        GPUSHARE_BIN="$bundle/gpushare-bin" timeout 90 "$bundle/harness-bench" "${quick[@]}" >"$logs/harness-bench.log" 2>&1 || rc=1
    fi
    grep -hE '^FIGURE |^harness overhead|thrpt:|^no GPU|^monitor/' "$logs"/*-bench.log || true
    if [ "$sharing_only" = yes ]; then
        cleanup_mps
        trap - EXIT
        echo "== MPS processes left: $(mps_pids | tr '\n' ' ')"
        return "$rc"
    fi

    echo "== study: the shipped probes-mix scenario"
    timeout 400 "$bundle/gpushare-bin" run probes-mix --out "$logs/probes-mix" --force \
        >"$logs/study.txt" 2>"$logs/study.err" || rc=1
    cat "$logs/study.txt"
    tail -n 5 "$logs/study.err"
    cleanup_mps
    trap - EXIT
    echo "== MPS processes left: $(mps_pids | tr '\n' ' ')"
    return "$rc"
}

# Prints the report sections of $1 (a `gpushare run` table) whose heading matches $2.
report_section() {
    awk -v want="$2" '
        $0 ~ "^" want { on = 1 }
        on { print }
        on && /^└/ { on = 0 }
    ' "$1"
}

# The occupancy, interval and scaling studies in one call, within MEASURE_BUDGET_S.
measure() {
    local dry=no phases=() arg bin
    for arg in "$@"; do
        case "$arg" in
            --dry-run) dry=yes ;;
            occupancy | interval | scaling | serve-scaling) phases+=("$arg") ;;
            *) die "measure: unknown argument $arg (--dry-run, occupancy, interval, scaling, serve-scaling)" ;;
        esac
    done
    [ ${#phases[@]} -gt 0 ] || phases=(occupancy interval scaling)
    if [ -n "${MEASURE_BIN:-}" ]; then
        bin=$MEASURE_BIN
        export NO_COLOR=1
    else
        torch_env
        bin="$torch_bundle/gpushare-bin"
    fi
    local out="${OUT:-$torch_bundle/logs}" work budget="${MEASURE_BUDGET_S:-450}" start=$SECONDS
    local rc=0 phase scenario left status flags
    work=$(mktemp -d "${TMPDIR:-/tmp}/gpushare-measure.XXXXXX")
    mkdir -p "$out"
    local summary="$out/measure-summary.txt"
    : >"$summary"
    if [ "$dry" = no ]; then
        local before
        before=$(mps_pids | tr '\n' ' ')
        [ -z "$before" ] || die "MPS processes already run ($before); not starting"
        trap cleanup_mps EXIT
        nvidia-smi --query-gpu=name,driver_version,compute_mode,mig.mode.current --format=csv,noheader | tee -a "$summary" || true
    fi
    for phase in "${phases[@]}"; do
        case "$phase" in
            occupancy) scenario=occupancy-mps flags=(--repetitions 1) ;;
            interval) scenario=latency-interval-sweep flags=() ;;
            scaling) scenario=scaling-resnet50-infer flags=(--duration 3) ;;
            serve-scaling) scenario=scaling-serve flags=() ;;
        esac
        if [ "$dry" = yes ]; then
            echo "== $phase: $bin run $scenario --strict ${flags[*]}" | tee -a "$summary"
            "$bin" run "$scenario" --dry-run --strict "${flags[@]}" >"$work/$phase.plan" || rc=1
            head -n 2 "$work/$phase.plan" | tee -a "$summary"
            continue
        fi
        left=$((budget - (SECONDS - start)))
        if [ "$left" -lt 45 ]; then
            echo "== $phase: skipped, the ${budget} s budget is spent" | tee -a "$summary"
            rc=1
            continue
        fi
        echo "== $phase: $scenario ${flags[*]} (at most ${left} s)" | tee -a "$summary"
        status=0
        timeout -s INT -k 30 "$left" "$bin" run "$scenario" --out "$work/$phase" --force --strict \
            "${flags[@]}" >"$work/$phase-report.txt" 2>"$work/$phase-progress.txt" || status=$?
        cleanup_mps
        mkdir -p "$work/$phase"
        mv "$work/$phase-report.txt" "$work/$phase-progress.txt" "$work/$phase/" 2>/dev/null || true
        tar -czf "$out/measure-$phase.tar.gz" -C "$work" "$phase"
        echo "exit status $status after $((SECONDS - start)) s in all" | tee -a "$summary"
        [ "$status" -eq 0 ] || rc=1
        {
            report_section "$work/$phase/$phase-report.txt" "Baselines"
            report_section "$work/$phase/$phase-report.txt" "Along the sweep"
            grep -E '^(c[0-9]+ .*host-bound|[0-9]+ of [0-9]+ runs VALID)' "$work/$phase/$phase-report.txt" || true
            tail -n 3 "$work/$phase/$phase-progress.txt"
        } | tee -a "$summary"
    done
    if [ "$dry" = no ]; then
        cleanup_mps
        trap - EXIT
        echo "== MPS processes left: $(mps_pids | tr '\n' ' '); wall $((SECONDS - start)) s" | tee -a "$summary"
    fi
    rm -rf "$work"
    return "$rc"
}

# The standard matrix of the mps bench built with torch (or one half of it), timed.
bench_timed() {
    local part="${1:-all}" out rc=0 start=$SECONDS work
    case "$part" in probes | mixes | all) ;; *) die "bench-timed: part must be probes, mixes or all" ;; esac
    torch_env
    [ -x "$torch_bundle/mps-bench" ] || die "no $torch_bundle/mps-bench: run '$0 build-torch' on the development machine"
    out="${OUT:-$torch_bundle/logs}"
    work=$(mktemp -d "${TMPDIR:-/tmp}/gpushare-bench.XXXXXX")
    mkdir -p "$out"
    before=$(mps_pids | tr '\n' ' ')
    [ -z "$before" ] || die "MPS processes already run ($before); not starting"
    export GPUSHARE_BIN="$PWD/$torch_bundle/gpushare-bin" GPUSHARE_RESULTS_DIR="$work"
    export CRITERION_HOME=/tmp/gpu-check-criterion GPUSHARE_BENCH_PART="$part"
    trap cleanup_mps EXIT
    timeout -s INT -k 30 "${BENCH_LIMIT_S:-570}" "$torch_bundle/mps-bench" --bench \
        >"$work/bench-mps-$part.log" 2>&1 || rc=$?
    cleanup_mps
    trap - EXIT
    tar -czf "$out/bench-mps-$part.tar.gz" -C "$work" .
    grep -vE '^(Benchmarking |Gnuplot not found|$)' "$work/bench-mps-$part.log" \
        | grep -E 'bench:|runs VALID|^launch-latency|time:|^\[|^(│|┌|└|├)' | tail -n 150 || true
    echo "FIGURE bench_mps_wall_s{part=$part} $((SECONDS - start)) (exit status $rc; MPS processes left: $(mps_pids | tr '\n' ' '))"
    rm -rf "$work"
    return "$rc"
}

# compare.sh with alternating rounds for a part of the 12 configurations.
compare_repeated() {
    local part="${1:-a}" configs out rc=0 start=$SECONDS
    case "$part" in
        a) configs="1 2 3 4" ;;
        b) configs="5 6 7 8" ;;
        c) configs="9 10 11 12" ;;
        all) configs="" ;;
        [0-9]*) configs="$*" part="n${*// /-}" ;;
        *) die "compare-repeated: part must be a, b, c, all or configuration numbers" ;;
    esac
    if [ -z "${COMPARE_DRY_RUN:-}" ]; then
        torch_env
    fi
    out="${OUT:-$torch_bundle/logs}"
    mkdir -p "$out"
    echo "== gpushare's torch job vs PyTorch eager, ${COMPARE_ROUNDS:-3} alternating rounds, configurations ${configs:-all}"
    COMPARE_CONFIGS="$configs" bench/reference/compare.sh "$torch_bundle/torch_throughput" --steps 40 \
        >"$out/compare-$part.txt" 2>"$out/compare-$part.jsonl" || rc=$?
    cat "$out/compare-$part.txt"
    echo "compare-repeated $part: exit status $rc, $((SECONDS - start)) s"
    return "$rc"
}

# Runs the sharing-mode benches one after another; exits with the first failing one's status.
bench() {
    [ -x "$bundle/gpushare-bin" ] || die "no $bundle/gpushare-bin: run '$0 build' on the development machine"
    local chosen=("$@") out="${OUT:-$bundle/logs}" status=0 name rc
    [ ${#chosen[@]} -gt 0 ] || chosen=(mps mig)
    mkdir -p "$out"
    export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export GPUSHARE_BIN="$PWD/$bundle/gpushare-bin" GPUSHARE_RESULTS_DIR="$out"
    export CRITERION_HOME=/tmp/gpu-check-criterion NO_COLOR=1
    trap cleanup_mps EXIT
    for name in "${chosen[@]}"; do
        [ -x "$bundle/$name-bench" ] || die "no $bundle/$name-bench (benches: mps, timeslice, mig)"
        rc=0
        "$bundle/$name-bench" --bench >"$out/$name.log" 2>&1 || rc=$?
        echo "== $name: exit status $rc (full output: $out/$name.log)"
        # Criterion's progress lines say nothing the results below them do not.
        grep -vE '^(Benchmarking |Gnuplot not found|$)' "$out/$name.log" | tail -n 120 || true
        if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
            status=$rc
        fi
    done
    cleanup_mps
    trap - EXIT
    return "$status"
}

# The CUDA-graph tests, then serving and infer.batch eager and as CUDA graphs, side by side.
serve_graphs() {
    local model=${1:-resnet50} logs="${OUT:-$torch_bundle/logs}" rc=0 bodies
    case "$model" in
        resnet50) bodies=(RESNET_BODIES="u8 u8:graphs") ;;
        bert-base) bodies=(BERT_BODIES="i64 i64:graphs") ;;
        *) die "serve-graphs: unknown model $model (resnet50 or bert-base)" ;;
    esac
    torch_env
    mkdir -p "$logs"
    echo "== gpu_* CUDA graph tests"
    torch_gpu_tests '.*graph' "$logs/graph-tests.log" || rc=1
    echo "== $model: serve and infer.batch, eager and as CUDA graphs"
    local server_cpus="" load_cpus=""
    if [ "$(nproc)" -ge 16 ]; then server_cpus=0-7 load_cpus=8-15; fi
    env OUT="$logs/serve-graphs-$model" MODELS="$model" "${bodies[@]}" \
        INFER_VARIANTS="eager graph" SERVER_CPUS="$server_cpus" LOAD_CPUS="$load_cpus" \
        bench/serve/side-by-side.sh "$torch_bundle/gpushare-bin" || rc=1
    return "$rc"
}

case "${1:-}" in
    build) build ;;
    build-torch) build_torch ;;
    run) run "$@" ;;
    torch) shift; torch_check "$@" ;;
    compare) compare ;;
    study) shift; study "$@" ;;
    bench) shift; bench "$@" ;;
    measure) shift; measure "$@" ;;
    bench-timed) shift; bench_timed "$@" ;;
    compare-repeated) shift; compare_repeated "$@" ;;
    serve-graphs) shift; serve_graphs "$@" ;;
    *) die "usage: $0 build | build-torch | run [--bench-probes] [--sharing-only] | torch [--compare] | compare | study SCENARIO [FLAGS] | bench [mps|timeslice|mig ...] | measure [--dry-run] [PHASE...] | bench-timed [probes|mixes|all] | compare-repeated [a|b|c|all|N...] | serve-graphs [resnet50|bert-base]" ;;
esac
