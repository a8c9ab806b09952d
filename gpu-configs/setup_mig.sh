#!/usr/bin/env bash
# Enable MIG on one GPU and partition it into GPU instances, each with one compute
# instance, from a named layout or an explicit profile list checked against the GPU
# model's profile table.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

GS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$GS_DIR/lib/common.sh"
# shellcheck source=lib/mig.sh
source "$GS_DIR/lib/mig.sh"

usage() {
  cat <<EOF
Usage: $GS_SCRIPT (--layout NAME | --profiles P1,P2,...) [--gpu N] [--replace] [--dry-run]
       $GS_SCRIPT --list

Enable MIG mode on a GPU (nvidia-smi -i N -mig 1) and create GPU instances with one
compute instance each (nvidia-smi mig -i N -cgi P1,P2,... -C). Needs root. No process
may be using the GPU. Some GPUs and drivers need a GPU reset or a reboot before MIG mode
takes effect: the script then stops with exit code 11 and says so; run it again after
the reset. gpushare's 'mig' mode runs tenants on the instances this creates.

Known GPU models (detected from nvidia-smi's GPU name):
  $MIG_MODELS
Layouts (--list shows their profiles per model):
  $MIG_LAYOUTS

Options:
  --gpu N              GPU index (default: 0)
  --layout NAME        a named layout
  --profiles LIST      comma-separated GPU instance profiles, like 3g.71gb,2g.35gb
  --replace            destroy the GPU's existing MIG instances first
  --list               print every model's profiles and layouts, then exit
  --dry-run            print the commands and change nothing (still queries the GPU)
  -h, --help           show this help

EOF
  gs_print_exit_codes
}

gpu_spec=0
layout=""
profiles=""
replace=0

while (($# > 0)); do
  if [[ $1 == --*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case $1 in
    --gpu) gs_need_value "$@"; gpu_spec=$2; shift 2 ;;
    --layout) gs_need_value "$@"; layout=$2; shift 2 ;;
    --profiles) gs_need_value "$@"; profiles=$2; shift 2 ;;
    --replace) replace=1; shift ;;
    --list) mig_print_tables; exit 0 ;;
    --dry-run) GS_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) gs_usage_error "unknown option '$1'" ;;
  esac
done

if [[ -n $layout && -n $profiles ]] || [[ -z $layout && -z $profiles ]]; then
  gs_usage_error "give exactly one of --layout NAME or --profiles LIST (layouts: $MIG_LAYOUTS)"
fi

gs_require_root "changing the MIG configuration"
gs_find_nvidia_smi
gs_resolve_gpus "$gpu_spec" 0
gpu=${GPUS[0]}

gpu_name=$(gs_gpu_field "$gpu" name)
model=$(mig_model_for_name "$gpu_name") || gs_die "$GS_EXIT_UNSUPPORTED_GPU" \
  "GPU $gpu is a '$gpu_name', whose MIG profiles this script does not know; known models: $MIG_MODELS"
mode=$(mig_mode "$gpu")
read -r mig_current mig_pending <<<"$mode"
if [[ $mig_current == N/A ]]; then
  gs_die "$GS_EXIT_UNSUPPORTED_GPU" "GPU $gpu ($gpu_name) reports no MIG mode: MIG is not available on it"
fi

if [[ -n $layout ]]; then
  profiles=$(mig_layout_profiles "$model" "$layout") || gs_die "$GS_EXIT_INVALID_LAYOUT" \
    "unknown layout '$layout'; layouts for $model: $MIG_LAYOUTS (--list shows their profiles)"
fi
problem=$(mig_check_profiles "$model" "$profiles")
if [[ -n $problem ]]; then
  gs_die "$GS_EXIT_INVALID_LAYOUT" "cannot create '$profiles' on $model: $problem;" \
    "profiles for $model: $(mig_profile_table "$model" | cut -d' ' -f1 | paste -sd' ')" \
    "(--list shows how many of each fit)"
fi
profiles=$(mig_sort_profiles "$model" "$profiles")

gs_refuse_if_busy "$gpu" "changing its MIG configuration"

if [[ $mig_current == Enabled ]]; then
  n_gis=$(mig_count_instances "$gpu" -lgi)
  n_cis=$(mig_count_instances "$gpu" -lci)
  if ((n_gis > 0)) && ((replace == 0)); then
    gs_refuse "$GS_EXIT_STATE_CONFLICT" \
      "GPU $gpu already has $n_gis MIG GPU instance(s); add --replace to destroy them, or run disable_mig.sh"
  elif ((n_gis > 0)); then
    ((n_cis == 0)) || gs_run "$NVIDIA_SMI" mig -i "$gpu" -dci
    gs_run "$NVIDIA_SMI" mig -i "$gpu" -dgi
  fi
else
  gs_run "$NVIDIA_SMI" -i "$gpu" -mig 1
  if gs_is_dry_run; then
    gs_info "note: if MIG mode stays pending after '-mig 1'," \
      "a GPU reset or reboot comes before the next command"
  else
    mode=$(mig_mode "$gpu")
    read -r mig_current mig_pending <<<"$mode"
    if [[ $mig_current != Enabled ]]; then
      gs_die "$GS_EXIT_RESET_REQUIRED" \
        "MIG mode on GPU $gpu is $mig_current now and $mig_pending after a reset:" \
        "reset the GPU (nvidia-smi -i $gpu -r, with nothing using it) or reboot, then run this script again"
    fi
  fi
fi

gs_run "$NVIDIA_SMI" mig -i "$gpu" -cgi "$profiles" -C

if ! gs_is_dry_run; then
  gs_info "GPU $gpu ($model) now has MIG instances $profiles; 'nvidia-smi -L' lists their UUIDs" \
    "for CUDA_VISIBLE_DEVICES and for gpushare's mig mode. Undo with disable_mig.sh --gpu $gpu."
fi
