#!/usr/bin/env bash
# Start the NVIDIA MPS control daemon for one GPU (or all), with optional default limits
# for its clients: active-thread percentage and pinned device memory.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

GS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$GS_DIR/lib/common.sh"
# shellcheck source=lib/mps.sh
source "$GS_DIR/lib/mps.sh"

usage() {
  cat <<EOF
Usage: $GS_SCRIPT [--gpu N|all] [--pipe-dir DIR] [--log-dir DIR]
                  [--active-thread-percentage P] [--pinned-mem-limit SIZE]
                  [--exclusive-process] [--timeout S] [--dry-run]

Start the MPS control daemon (nvidia-cuda-mps-control -d) so that CUDA processes which
use the same pipe directory become clients of one MPS server per GPU and run
concurrently on it. Needs root. This is the system-wide counterpart of gpushare's 'mps'
mode, which starts a private daemon of its own for each run.

Options:
  --gpu N|all                   GPU the daemon serves, or all GPUs (default: 0)
  --pipe-dir DIR                CUDA_MPS_PIPE_DIRECTORY (default: $MPS_DEFAULT_PIPE_DIR);
                                clients must use the same directory
  --log-dir DIR                 CUDA_MPS_LOG_DIRECTORY (default: $MPS_DEFAULT_LOG_DIR)
  --active-thread-percentage P  default share of SMs per client, 1-100
                                (set_default_active_thread_percentage)
  --pinned-mem-limit SIZE       default device memory limit per client, like 8G or 512M
                                (set_default_device_pinned_mem_limit, for each GPU)
  --exclusive-process           also set compute mode EXCLUSIVE_PROCESS, so that only the
                                MPS server can open the GPU, as NVIDIA recommends for MPS
                                on multi-user hosts (undo: disable_mps.sh --restore-compute-mode)
  --timeout S                   seconds to wait for the daemon to come up (default: 10)
  --dry-run                     print the commands and change nothing
  -h, --help                    show this help

EOF
  gs_print_exit_codes
}

gpu_spec=0
pipe_dir=$MPS_DEFAULT_PIPE_DIR
log_dir=$MPS_DEFAULT_LOG_DIR
thread_percentage=""
pinned_mem_limit=""
exclusive_process=0
timeout_s=10

while (($# > 0)); do
  if [[ $1 == --*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case $1 in
    --gpu) gs_need_value "$@"; gpu_spec=$2; shift 2 ;;
    --pipe-dir) gs_need_value "$@"; pipe_dir=$2; shift 2 ;;
    --log-dir) gs_need_value "$@"; log_dir=$2; shift 2 ;;
    --active-thread-percentage) gs_need_value "$@"; thread_percentage=$2; shift 2 ;;
    --pinned-mem-limit) gs_need_value "$@"; pinned_mem_limit=$2; shift 2 ;;
    --exclusive-process) exclusive_process=1; shift ;;
    --timeout) gs_need_value "$@"; timeout_s=$2; shift 2 ;;
    --dry-run) GS_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) gs_usage_error "unknown option '$1'" ;;
  esac
done

if [[ -n $thread_percentage ]]; then
  if ! gs_is_uint "$thread_percentage" || ((10#$thread_percentage < 1 || 10#$thread_percentage > 100)); then
    gs_usage_error "--active-thread-percentage takes a whole number from 1 to 100, not '$thread_percentage'"
  fi
  thread_percentage=$((10#$thread_percentage))
fi
if [[ -n $pinned_mem_limit && ! $pinned_mem_limit =~ ^[1-9][0-9]*[MG]$ ]]; then
  gs_usage_error "--pinned-mem-limit takes a size like 8G or 512M, not '$pinned_mem_limit'"
fi
gs_is_uint "$timeout_s" || gs_usage_error "--timeout takes whole seconds, not '$timeout_s'"
[[ $pipe_dir == /* && $log_dir == /* ]] || gs_usage_error "--pipe-dir and --log-dir take absolute paths"

gs_require_root "starting the MPS control daemon"
gs_find_nvidia_smi
gs_find_mps_control
gs_resolve_gpus "$gpu_spec" 1

running_pid=$(mps_daemon_pid "$pipe_dir")
if [[ -n $running_pid ]]; then
  gs_refuse "$GS_EXIT_STATE_CONFLICT" \
    "an MPS control daemon (pid $running_pid) already serves $pipe_dir;" \
    "stop it with disable_mps.sh first, so the new settings apply"
fi

# CUDA numbers devices fastest-first unless told otherwise; PCI bus order makes the
# daemon's device ordinals match nvidia-smi's indices.
daemon_env=(CUDA_DEVICE_ORDER=PCI_BUS_ID
  "CUDA_MPS_PIPE_DIRECTORY=$pipe_dir" "CUDA_MPS_LOG_DIRECTORY=$log_dir")
if [[ $gpu_spec == all ]]; then
  daemon_env=(-u CUDA_VISIBLE_DEVICES "${daemon_env[@]}")
  device_ordinals=("${!GPUS[@]}")
else
  # The daemon and its servers then see only this GPU, as their device 0.
  daemon_env=("CUDA_VISIBLE_DEVICES=${GPUS[0]}" "${daemon_env[@]}")
  device_ordinals=(0)
fi

if ((exclusive_process == 1)); then
  for gpu in "${GPUS[@]}"; do
    gs_run "$NVIDIA_SMI" -i "$gpu" -c EXCLUSIVE_PROCESS
  done
fi
gs_run mkdir -p "$pipe_dir" "$log_dir"
gs_run env "${daemon_env[@]}" "$MPS_CONTROL" -d
mps_wait_for_daemon "$pipe_dir" "$timeout_s"

# Defaults set here apply to servers started from now on and are lost when the daemon
# quits (NVIDIA MPS docs, "nvidia-cuda-mps-control"), so they go right after the start.
if [[ -n $thread_percentage ]]; then
  mps_command "$pipe_dir" "set_default_active_thread_percentage $thread_percentage"
fi
if [[ -n $pinned_mem_limit ]]; then
  for ordinal in "${device_ordinals[@]}"; do
    mps_command "$pipe_dir" "set_default_device_pinned_mem_limit $ordinal $pinned_mem_limit"
  done
fi

if ! gs_is_dry_run; then
  gs_info "MPS control daemon running for GPU(s) ${GPUS[*]}; clients must run with" \
    "CUDA_MPS_PIPE_DIRECTORY=$pipe_dir (logs in $log_dir). Stop it with disable_mps.sh."
fi
