#!/usr/bin/env bash
# Destroy a GPU's MIG compute and GPU instances and turn MIG mode off.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

GS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$GS_DIR/lib/common.sh"
# shellcheck source=lib/mig.sh
source "$GS_DIR/lib/mig.sh"

usage() {
  cat <<EOF
Usage: $GS_SCRIPT [--gpu N] [--dry-run]

Destroy every compute instance and GPU instance of a GPU (nvidia-smi mig -i N -dci,
then -dgi) and disable MIG mode (nvidia-smi -i N -mig 0). Needs root. No process may be
using the GPU. Some GPUs and drivers need a GPU reset or a reboot before MIG mode is
really off: the script then says so and exits with code 11. Does nothing (and succeeds)
when MIG is already off.

Options:
  --gpu N      GPU index (default: 0)
  --dry-run    print the commands and change nothing (still queries the GPU)
  -h, --help   show this help

EOF
  gs_print_exit_codes
}

gpu_spec=0

while (($# > 0)); do
  if [[ $1 == --*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case $1 in
    --gpu) gs_need_value "$@"; gpu_spec=$2; shift 2 ;;
    --dry-run) GS_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) gs_usage_error "unknown option '$1'" ;;
  esac
done

gs_require_root "changing the MIG configuration"
gs_find_nvidia_smi
gs_resolve_gpus "$gpu_spec" 0
gpu=${GPUS[0]}

mode=$(mig_mode "$gpu")
read -r mig_current mig_pending <<<"$mode"
if [[ $mig_current == N/A ]]; then
  gs_die "$GS_EXIT_UNSUPPORTED_GPU" "GPU $gpu reports no MIG mode: MIG is not available on it"
fi
if [[ $mig_current == Disabled && $mig_pending == Disabled ]]; then
  gs_info "MIG is already disabled on GPU $gpu; nothing to do"
  exit 0
fi

gs_refuse_if_busy "$gpu" "changing its MIG configuration"

if [[ $mig_current == Enabled ]]; then
  # Compute instances live inside GPU instances, so they go first.
  if (($(mig_count_instances "$gpu" -lci) > 0)); then
    gs_run "$NVIDIA_SMI" mig -i "$gpu" -dci
  fi
  if (($(mig_count_instances "$gpu" -lgi) > 0)); then
    gs_run "$NVIDIA_SMI" mig -i "$gpu" -dgi
  fi
fi
gs_run "$NVIDIA_SMI" -i "$gpu" -mig 0

if ! gs_is_dry_run; then
  mode=$(mig_mode "$gpu")
  read -r mig_current mig_pending <<<"$mode"
  if [[ $mig_current != Disabled ]]; then
    gs_die "$GS_EXIT_RESET_REQUIRED" \
      "MIG mode on GPU $gpu is $mig_current now and $mig_pending after a reset:" \
      "reset the GPU (nvidia-smi -i $gpu -r, with nothing using it) or reboot"
  fi
  gs_info "MIG is disabled on GPU $gpu"
fi
