#!/usr/bin/env bash
# Checks `gpushare monitor` and `gpushare run --prometheus` on a GPU host in about 30 s:
#  1. the live view printed once after 50 samples (--frames), and the Prometheus text with
#     dcgm-exporter's names fetched from `monitor --prometheus` while it runs;
#  2. a short study ($RUN_SCENARIO, default probes-mix, exclusive and time-slicing, 2 s
#     windows, one repetition) run with --prometheus, its live figures fetched every
#     second: the study's gpushare_* series and, during runs, the GPU's DCGM_* ones.
# Writes everything under $OUT (default target/monitor-check).
#   scripts/monitor-check.sh [GPUSHARE [FLAGS...]]   (default: target/gpu-check/gpushare,
#   else gpushare on PATH; FLAGS go to `monitor`, e.g. --synthetic to try it without a GPU,
#   with RUN_SCENARIO=smoke-cpu for the study part)
set -euo pipefail
cd "$(dirname "$0")/.."

gpushare=${1:-target/gpu-check/gpushare}
shift || true
[ -x "$gpushare" ] || gpushare=gpushare
out=${OUT:-target/monitor-check}
addr=127.0.0.1:9400
run_addr=127.0.0.1:9401
scenario=${RUN_SCENARIO:-probes-mix}
mkdir -p "$out"

# One GET /metrics through bash's /dev/tcp (no curl needed on the host) into $2; fails
# when nothing listens on $1.
scrape() {
    exec 3<>"/dev/tcp/${1%:*}/${1#*:}" || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: gpushare\r\n\r\n' >&3
    cat <&3 >"$2"
    exec 3<&-
}

"$gpushare" monitor --frames 50 --interval 100ms --prometheus "$addr" "$@" >"$out/monitor-frame.txt" &
monitor=$!
sleep 3
scrape "$addr" "$out/metrics.txt"
wait "$monitor"
cat "$out/monitor-frame.txt"
echo "--- /metrics (DCGM names):"
grep -E '^(DCGM_FI_DEV_(GPU_UTIL|POWER_USAGE|SM_CLOCK|FB_USED|GPU_TEMP)|gpushare_process_)' "$out/metrics.txt" || true

echo "--- run $scenario --prometheus $run_addr:"
"$gpushare" run "$scenario" --modes exclusive,time-slicing --duration 2s --repetitions 1 \
    --out "$out/run-study" --force --prometheus "$run_addr" >"$out/run-report.txt" 2>"$out/run-stderr.txt" &
study=$!
# The last scrape taken, and the last taken while a run sampled the GPU.
n=0
last=
with_gpu=
while kill -0 "$study" 2>/dev/null; do
    sleep 1
    n=$((n + 1))
    file="$out/run-metrics-$n.txt"
    if scrape "$run_addr" "$file" 2>/dev/null; then
        last=$file
        if grep -q '^DCGM_FI_DEV_GPU_UTIL' "$file"; then
            with_gpu=$file
        fi
    else
        rm -f "$file"
    fi
done
status=0
wait "$study" || status=$?
cat "$out/run-stderr.txt"
echo "run exit status: $status (3: a run was INVALID; see $out/run-report.txt)"
pick=${with_gpu:-$last}
if [ -z "$pick" ]; then
    echo "no scrape of the study's /metrics succeeded" >&2
    exit 1
fi
echo "--- $pick (a run's live figures; phase series at 0 left out):"
grep -E '^(gpushare_(study|run|tenant)_|DCGM_FI_DEV_(GPU_UTIL|POWER_USAGE|SM_CLOCK|FB_USED))' "$pick" | grep -v 'phase=".*} 0$' || true
