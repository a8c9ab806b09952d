#!/usr/bin/env bash
# Stop the NVIDIA MPS control daemon of a pipe directory and wait until it and its
# servers are gone; optionally put the GPU back into the DEFAULT compute mode.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

GS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$GS_DIR/lib/common.sh"
# shellcheck source=lib/mps.sh
source "$GS_DIR/lib/mps.sh"

usage() {
  cat <<EOF
Usage: $GS_SCRIPT [--pipe-dir DIR] [--timeout S] [--restore-compute-mode [--gpu N|all]]
                   [--dry-run]

Send 'quit' to the MPS control daemon of a pipe directory
  echo quit | nvidia-cuda-mps-control
and wait until the daemon and its MPS servers have exited. Needs root. Does nothing
(and succeeds) when no daemon serves that pipe directory.

Options:
  --pipe-dir DIR          CUDA_MPS_PIPE_DIRECTORY of the daemon (default: $MPS_DEFAULT_PIPE_DIR)
  --timeout S             seconds to wait for the processes to exit (default: 30)
  --restore-compute-mode  afterwards set compute mode DEFAULT (undoes
                          enable_mps.sh --exclusive-process)
  --gpu N|all             GPU(s) for --restore-compute-mode (default: 0)
  --dry-run               print the commands and change nothing
  -h, --help              show this help

EOF
  gs_print_exit_codes
}

gpu_spec=0
gpu_given=0
pipe_dir=$MPS_DEFAULT_PIPE_DIR
timeout_s=30
restore_compute_mode=0

while (($# > 0)); do
  if [[ $1 == --*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case $1 in
    --gpu) gs_need_value "$@"; gpu_spec=$2; gpu_given=1; shift 2 ;;
    --pipe-dir) gs_need_value "$@"; pipe_dir=$2; shift 2 ;;
    --timeout) gs_need_value "$@"; timeout_s=$2; shift 2 ;;
    --restore-compute-mode) restore_compute_mode=1; shift ;;
    --dry-run) GS_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) gs_usage_error "unknown option '$1'" ;;
  esac
done

gs_is_uint "$timeout_s" || gs_usage_error "--timeout takes whole seconds, not '$timeout_s'"
if ((gpu_given == 1 && restore_compute_mode == 0)); then
  gs_usage_error "--gpu only applies with --restore-compute-mode: the daemon is chosen by --pipe-dir"
fi

gs_require_root "stopping the MPS control daemon"
gs_find_mps_control
if ((restore_compute_mode == 1)); then
  gs_find_nvidia_smi
  gs_resolve_gpus "$gpu_spec" 1
fi

daemon_pid=$(mps_daemon_pid "$pipe_dir")
if [[ -z $daemon_pid ]]; then
  others=$(mps_pids nvidia-cuda-mps-control)
  if [[ -n $others ]]; then
    gs_info "no MPS control daemon serves $pipe_dir (no live pid in $pipe_dir/nvidia-cuda-mps-control.pid);" \
      "other daemon(s) run as pid(s) $(paste -sd' ' <<<"$others"): pass their --pipe-dir to stop them"
  else
    gs_info "no MPS control daemon is running; nothing to stop"
  fi
else
  # The servers to wait for are asked before `quit`: afterwards nobody answers. A dry
  # run does not ask, since the daemon may take commands from its owner only.
  server_pids=()
  if ! gs_is_dry_run; then
    servers=$(mps_server_pids "$pipe_dir")
    [[ -z $servers ]] || mapfile -t server_pids <<<"$servers"
  fi
  mps_command "$pipe_dir" quit
  if ! gs_is_dry_run; then
    mps_wait_gone "$timeout_s" "$daemon_pid" "${server_pids[@]}"
    gs_info "MPS control daemon (pid $daemon_pid) and its ${#server_pids[@]} server(s) have exited"
  fi
fi

if ((restore_compute_mode == 1)); then
  for gpu in "${GPUS[@]}"; do
    gs_run "$NVIDIA_SMI" -i "$gpu" -c DEFAULT
  done
fi
