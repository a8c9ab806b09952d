#!/usr/bin/env bash
# Time-slicing, two ways: put a GPU back into the DEFAULT compute mode on this host, so
# that concurrent CUDA processes share it through the driver's time-slicing; or print the
# NVIDIA Kubernetes device plugin config that advertises each GPU as N `nvidia.com/gpu`
# replicas.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

GS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$GS_DIR/lib/common.sh"

usage() {
  cat <<EOF
Usage:
  $GS_SCRIPT [--gpu N|all] [--dry-run]
  $GS_SCRIPT --k8s --replicas N [--name NAME] [--namespace NS] [--config-key KEY]
             [--rename-by-default] [--fail-requests-greater-than-one]
             [--output FILE] [--dry-run]

Host route (default): set the compute mode of a GPU to DEFAULT with
  nvidia-smi -i N -c DEFAULT
so that any number of processes may open a context on it and the driver time-slices
between them. Needs root. This is what gpushare's 'time-slicing' mode expects.

Kubernetes route (--k8s): print a ConfigMap for the NVIDIA device plugin (or the GPU
Operator) that makes every GPU of a node schedulable as N 'nvidia.com/gpu' replicas, for
example to pipe into 'kubectl apply -f -'. Changes nothing on this host, needs neither
root nor nvidia-smi.

Options:
  --gpu N|all          GPU index for the host route, or all GPUs (default: 0)
  --k8s                print the device plugin ConfigMap instead of changing this host
  --replicas N         replicas per GPU, at least 2 (required with --k8s)
  --name NAME          ConfigMap name (default: time-slicing-config)
  --namespace NS       ConfigMap namespace (default: gpu-operator)
  --config-key KEY     key of the config inside the ConfigMap (default: any)
  --rename-by-default  advertise the replicas as 'nvidia.com/gpu.shared'
  --fail-requests-greater-than-one
                       reject pods that request more than one replica
  --output FILE        write the ConfigMap to FILE instead of stdout
  --dry-run            print the commands (or the file) and change nothing
  -h, --help           show this help

EOF
  gs_print_exit_codes
}

gpu_spec=0
gpu_given=0
k8s=0
replicas=""
cm_name=time-slicing-config
cm_namespace="gpu-operator"
config_key=any
rename_by_default=false
fail_requests_greater_than_one=false
output=""

while (($# > 0)); do
  if [[ $1 == --*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case $1 in
    --gpu) gs_need_value "$@"; gpu_spec=$2; gpu_given=1; shift 2 ;;
    --k8s) k8s=1; shift ;;
    --replicas) gs_need_value "$@"; replicas=$2; shift 2 ;;
    --name) gs_need_value "$@"; cm_name=$2; shift 2 ;;
    --namespace) gs_need_value "$@"; cm_namespace=$2; shift 2 ;;
    --config-key) gs_need_value "$@"; config_key=$2; shift 2 ;;
    --rename-by-default) rename_by_default=true; shift ;;
    --fail-requests-greater-than-one) fail_requests_greater_than_one=true; shift ;;
    --output) gs_need_value "$@"; output=$2; shift 2 ;;
    --dry-run) GS_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) gs_usage_error "unknown option '$1'" ;;
  esac
done

# The device plugin config, as documented in NVIDIA's k8s-device-plugin README
# ("Shared Access to GPUs with CUDA Time-Slicing") and the GPU Operator's
# "Time-Slicing GPUs in Kubernetes" page.
render_config_map() {
  cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $cm_name
  namespace: $cm_namespace
data:
  $config_key: |-
    version: v1
    flags:
      migStrategy: none
    sharing:
      timeSlicing:
        renameByDefault: $rename_by_default
        failRequestsGreaterThanOne: $fail_requests_greater_than_one
        resources:
          - name: nvidia.com/gpu
            replicas: $replicas
EOF
}

k8s_route() {
  ((gpu_given == 0)) || gs_usage_error \
    "--gpu does not apply to --k8s: the device plugin shares every GPU of a node"
  [[ -n $replicas ]] || gs_usage_error "--k8s needs --replicas N"
  if ! gs_is_uint "$replicas" || ((10#$replicas < 2)); then
    gs_usage_error "--replicas takes a whole number of at least 2 (1 would not share), not '$replicas'"
  fi
  # Kubernetes object names are DNS-1123 labels; a config key is a ConfigMap data key.
  local label='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
  [[ $cm_name =~ $label ]] || gs_usage_error "--name '$cm_name' is not a valid Kubernetes name"
  [[ $cm_namespace =~ $label ]] || gs_usage_error "--namespace '$cm_namespace' is not a valid Kubernetes name"
  [[ $config_key =~ ^[-._a-zA-Z0-9]+$ ]] ||
    gs_usage_error "--config-key '$config_key' is not a valid ConfigMap key"
  replicas=$((10#$replicas))

  if [[ -z $output ]]; then
    render_config_map
  elif gs_is_dry_run; then
    gs_info "would write the ConfigMap below to $output"
    render_config_map
  else
    render_config_map >"$output"
    gs_info "wrote ConfigMap $cm_namespace/$cm_name to $output"
  fi
  gs_info "next: kubectl apply -f <that file>, then point the device plugin at it" \
    "(GPU Operator: devicePlugin.config.name=$cm_name, default=$config_key); see gpu-configs/README.md"
}

host_route() {
  [[ -z $replicas && -z $output ]] || gs_usage_error "--replicas and --output need --k8s"
  gs_require_root "setting the compute mode"
  gs_find_nvidia_smi
  gs_resolve_gpus "$gpu_spec" 1

  local gpu mig_mode
  for gpu in "${GPUS[@]}"; do
    mig_mode=$(gs_gpu_field "$gpu" mig.mode.current)
    if [[ $mig_mode == Enabled ]]; then
      gs_warn "MIG is enabled on GPU $gpu:" \
        "processes are time-sliced within each MIG instance, not across the GPU"
    fi
  done
  # A running MPS control daemon turns new CUDA processes into MPS clients, which then
  # share the GPU through MPS instead of time-slicing.
  if [[ -n $(pgrep -f '^([^ ]*/)?nvidia-cuda-mps-control( |$)' || true) ]]; then
    gs_warn "an MPS control daemon is running: CUDA processes will be MPS clients," \
      "not time-sliced (stop it with disable_mps.sh)"
  fi

  for gpu in "${GPUS[@]}"; do
    gs_run "$NVIDIA_SMI" -i "$gpu" -c DEFAULT
  done
  gs_is_dry_run || gs_info "compute mode DEFAULT on GPU(s) ${GPUS[*]}: concurrent processes are time-sliced"
}

if ((k8s == 1)); then
  k8s_route
else
  host_route
fi
