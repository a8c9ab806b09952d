#!/usr/bin/env bash
# Checks the sharing modes on a real GPU: runs the `gpu_sharing::gpu_*` tests (real MPS
# daemon, SM and memory limits, MIG check, doctor) and the MPS stub tests from a nextest
# archive, one test at a time, then makes sure no MPS daemon is left and prints a summary.
#
#   scripts/gpu-check-sharing.sh build   # development machine: archive into target/gpu-check/
#   scripts/gpu-check-sharing.sh run     # GPU machine, repository root: run the archive
#
# `run` needs the source tree and target/gpu-check/ (about 35 MB: the archive and a copy
# of cargo-nextest); no cargo. It changes no GPU setting. It starts MPS daemons only in
# private directories (gpushare-mps-*, gs-foreign-*) and, on exit, quits and if need be
# kills those, and only those, by pid. The full log goes to $OUT (or target/gpu-check).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=target/gpu-check
filter='test(/^gpu_sharing::gpu_/) | test(/^sharing_mps::/)'

die() {
  echo "gpu-check-sharing: $*" >&2
  exit 1
}

build() {
  command -v cargo-nextest >/dev/null || die "cargo-nextest is not on PATH"
  mkdir -p "$dir"
  cargo nextest archive --test it --archive-file "$dir/tests.tar.zst"
  cp "$(command -v cargo-nextest)" "$dir/cargo-nextest"
  du -sh "$dir"/tests.tar.zst "$dir"/cargo-nextest
}

# Pids of running MPS processes (control daemons and servers), by argv[0]; comm is cut
# to 15 bytes, so pgrep -x cannot match these names.
mps_pids() {
  local proc pid arg0
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    arg0=$(tr '\0' '\n' 2>/dev/null <"$proc/cmdline" | head -n 1) || continue
    case "${arg0##*/}" in
      nvidia-cuda-mps-control | nvidia-cuda-mps-server) echo "$pid" ;;
    esac
  done
}

# The pipe directory a process was started with, if it is one of the tests' own.
test_pipe_dir() {
  local pipe
  pipe=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" |
    sed -n 's/^CUDA_MPS_PIPE_DIRECTORY=//p') || return 1
  case "$pipe" in
    */gpushare-mps-*/pipe | */gs-foreign-*/pipe) echo "$pipe" ;;
    *) return 1 ;;
  esac
}

# Quits, then kills, MPS processes the tests started and left (there should be none).
cleanup() {
  local pid pipe left=()
  for pid in $(mps_pids); do
    if pipe=$(test_pipe_dir "$pid"); then
      echo quit | CUDA_MPS_PIPE_DIRECTORY=$pipe nvidia-cuda-mps-control >/dev/null 2>&1 || true
      left+=("$pid")
    fi
  done
  [ ${#left[@]} -eq 0 ] && return 0
  echo "gpu-check-sharing: tests left MPS processes ${left[*]}; quit sent" >&2
  sleep 10
  for pid in "${left[@]}"; do
    if [ -d "/proc/$pid" ] && test_pipe_dir "$pid" >/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      echo "gpu-check-sharing: killed $pid" >&2
    fi
  done
}

run() {
  [ -f "$dir/tests.tar.zst" ] || die "no $dir/tests.tar.zst: run '$0 build' on the development machine"
  command -v nvidia-cuda-mps-control >/dev/null || die "nvidia-cuda-mps-control is not on PATH"
  local before log status left
  before=$(mps_pids | tr '\n' ' ')
  [ -z "$before" ] || die "MPS processes already run ($before); the MPS tests would refuse to start"
  log=${OUT:-$dir}/gpu-check-sharing.log
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  trap cleanup EXIT

  status=0
  # One test at a time: the MPS tests start and stop the host's one MPS daemon.
  "$dir/cargo-nextest" nextest run --archive-file "$dir/tests.tar.zst" --workspace-remap . \
    -E "$filter" --test-threads 1 --no-capture --no-fail-fast >"$log" 2>&1 || status=$?
  cleanup
  trap - EXIT

  echo "== gpu-check-sharing: sharing modes on $(nvidia-smi --query-gpu=name,driver_version,compute_mode,mig.mode.current --format=csv,noheader 2>/dev/null | head -n 1)"
  grep -E '^ +(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT|LEAK)' "$log" | sed -E 's/^ +//' || true
  echo "-- figures"
  grep -E '^SMs: ' "$log" || echo "SMs: (not reported)"
  grep -E 'compute mode: |daemon answers|starting MPS: an MPS control daemon' "$log" | sed -E 's/^ +//' | sort -u | head -n 8 || true
  left=$(mps_pids | tr '\n' ' ')
  echo "-- MPS processes left: ${left:-none}"
  grep -E '^ +Summary' "$log" | sed -E 's/^ +//' || echo "no nextest summary: see $log"
  echo "full log: $log (exit $status)"
  return "$status"
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) die "usage: $0 build|run" ;;
esac
