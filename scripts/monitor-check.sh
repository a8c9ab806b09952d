#!/usr/bin/env bash
# Checks `gpushare monitor` on a GPU host in about 10 s: the live view printed once after
# 50 samples (--frames), and the Prometheus text with dcgm-exporter's names fetched from
# --prometheus while it runs. Writes both under $OUT (default target/monitor-check).
#   scripts/monitor-check.sh [GPUSHARE [FLAGS...]]   (default: target/gpu-check/gpushare,
#   else gpushare on PATH; FLAGS go to `monitor`, e.g. --synthetic to try it without a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."

gpushare=${1:-target/gpu-check/gpushare}
shift || true
[ -x "$gpushare" ] || gpushare=gpushare
out=${OUT:-target/monitor-check}
addr=127.0.0.1:9400
mkdir -p "$out"

"$gpushare" monitor --frames 50 --interval 100ms --prometheus "$addr" "$@" >"$out/monitor-frame.txt" &
monitor=$!
sleep 3
# bash's /dev/tcp: no curl needed on the host.
exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}"
printf 'GET /metrics HTTP/1.0\r\nHost: gpushare\r\n\r\n' >&3
cat <&3 >"$out/metrics.txt"
exec 3<&-
wait "$monitor"
cat "$out/monitor-frame.txt"
echo "--- /metrics (DCGM names):"
grep -E '^(DCGM_FI_DEV_(GPU_UTIL|POWER_USAGE|SM_CLOCK|FB_USED|GPU_TEMP)|gpushare_process_)' "$out/metrics.txt" || true
