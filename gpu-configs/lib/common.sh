# shellcheck shell=bash disable=SC2034
# (SC2034: variables set here are used by the scripts that source this file.)
# Shared functions for the gpu-configs scripts: option helpers, messages, exit codes, the
# root check, dry-run command execution and read-only nvidia-smi queries.
#
# Sourced, never run. The scripts that source it own every decision about what to change;
# this file only runs what they ask for, or prints it under --dry-run.
#
# Test hooks (environment variables; for the test suite, not for everyday use):
#   GPUSHARE_ASSUME_ROOT=1|0   treat the caller as root (1) or not root (0) instead of
#                              asking `id -u`.
#   GPUSHARE_NVIDIA_SMI=PATH   run this program instead of the `nvidia-smi` on PATH.
#   GPUSHARE_MPS_CONTROL=PATH  run this program instead of the `nvidia-cuda-mps-control`
#                              on PATH.

# Exit codes, the same for every script. Listed by gs_print_exit_codes for --help.
readonly GS_EXIT_COMMAND_FAILED=1
readonly GS_EXIT_USAGE=2
readonly GS_EXIT_NOT_ROOT=3
readonly GS_EXIT_MISSING_TOOL=4
readonly GS_EXIT_NO_SUCH_GPU=5
readonly GS_EXIT_UNSUPPORTED_GPU=6
readonly GS_EXIT_INVALID_LAYOUT=7
readonly GS_EXIT_GPU_BUSY=8
readonly GS_EXIT_STATE_CONFLICT=9
readonly GS_EXIT_TIMEOUT=10
readonly GS_EXIT_RESET_REQUIRED=11

GS_SCRIPT=$(basename "$0")
GS_DRY_RUN=0

gs_print_exit_codes() {
  cat <<'EOF'
Exit codes:
  0   success
  1   a command this script ran failed (its own message is printed above)
  2   bad option or option value
  3   not running as root (only --dry-run works without root)
  4   a required program (nvidia-smi, nvidia-cuda-mps-control) is missing
  5   no GPU with the given index
  6   GPU model or feature not supported by this script
  7   MIG layout or profile not valid for this GPU
  8   GPU busy: compute processes are running on it
  9   conflicting state (MPS already running, MIG instances already exist, ...)
  10  timed out waiting for a process to start or stop
  11  change requested but pending: reset the GPU or reboot for it to take effect
EOF
}

gs_info() { printf '%s: %s\n' "$GS_SCRIPT" "$*" >&2; }
gs_warn() { printf '%s: warning: %s\n' "$GS_SCRIPT" "$*" >&2; }

# gs_die CODE MESSAGE...: print an error to stderr and exit with CODE.
gs_die() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$GS_SCRIPT" "$*" >&2
  exit "$code"
}

gs_usage_error() {
  gs_die "$GS_EXIT_USAGE" "$* (see $GS_SCRIPT --help)"
}

# gs_refuse CODE MESSAGE...: stop on a state the real run must not proceed from. Under
# --dry-run only warn, so the dry run still shows every command the real run would issue
# once the state is fixed.
gs_refuse() {
  local code=$1
  shift
  if gs_is_dry_run; then
    gs_warn "$* (a real run would stop here with exit code $code)"
  else
    gs_die "$code" "$*"
  fi
}

gs_is_dry_run() { [[ $GS_DRY_RUN == 1 ]]; }

# gs_need_value OPTION "$@": the option at $1 takes a value; fail if there is none.
gs_need_value() {
  if (($# < 2)) || [[ $2 == --* ]]; then
    gs_usage_error "option $1 needs a value"
  fi
}

gs_is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- root ---------------------------------------------------------------------------

gs_is_root() {
  case "${GPUSHARE_ASSUME_ROOT-}" in
    1) return 0 ;;
    0) return 1 ;;
    "") [[ $(id -u) == 0 ]] ;;
    *) gs_die "$GS_EXIT_USAGE" "GPUSHARE_ASSUME_ROOT must be 0 or 1, not '$GPUSHARE_ASSUME_ROOT'" ;;
  esac
}

# gs_require_root WHAT: changing GPU settings needs root; a dry run does not.
gs_require_root() {
  gs_is_dry_run && return 0
  gs_is_root || gs_die "$GS_EXIT_NOT_ROOT" \
    "$1 needs root: run it with sudo, or add --dry-run to only print the commands"
}

# --- programs -----------------------------------------------------------------------

# gs_find_tool OVERRIDE_VAR NAME HINT: print the path of program NAME, or of the test
# hook in OVERRIDE_VAR when that is set.
gs_find_tool() {
  local override_var=$1 name=$2 hint=$3 path
  path=${!override_var-}
  if [[ -n $path ]]; then
    [[ -x $path ]] || gs_die "$GS_EXIT_MISSING_TOOL" "$name not found at $path (set by $override_var)"
  else
    path=$(command -v "$name") || gs_die "$GS_EXIT_MISSING_TOOL" "$name not found on PATH: $hint"
  fi
  printf '%s\n' "$path"
}

gs_find_nvidia_smi() {
  NVIDIA_SMI=$(gs_find_tool GPUSHARE_NVIDIA_SMI nvidia-smi \
    "install the NVIDIA driver utilities (package nvidia-utils-<version>)")
}

gs_find_mps_control() {
  MPS_CONTROL=$(gs_find_tool GPUSHARE_MPS_CONTROL nvidia-cuda-mps-control \
    "install the NVIDIA compute utilities (package nvidia-compute-utils-<version>)")
}

# --- running commands ---------------------------------------------------------------

# gs_quote ARGS...: the arguments as one line a shell reads back as the same words.
gs_quote() {
  local arg out=""
  for arg in "$@"; do
    if [[ ! $arg =~ ^[A-Za-z0-9_./,:=+@%-]+$ ]]; then
      arg="'${arg//\'/\'\\\'\'}'"
    fi
    out+="${out:+ }$arg"
  done
  printf '%s' "$out"
}

# gs_run COMMAND ARGS...: run a command that changes something. Under --dry-run print it
# on stdout instead; otherwise echo it on stderr first, the way `set -x` would.
gs_run() {
  local line status=0
  line=$(gs_quote "$@")
  if gs_is_dry_run; then
    printf '%s\n' "$line"
    return 0
  fi
  printf '+ %s\n' "$line" >&2
  "$@" || status=$?
  if ((status != 0)); then
    gs_die "$GS_EXIT_COMMAND_FAILED" "command failed with exit status $status: $line"
  fi
}

# gs_run_with_input INPUT COMMAND ARGS...: like gs_run, with INPUT (one line) on stdin.
gs_run_with_input() {
  local input=$1 line status=0
  shift
  line="echo $(gs_quote "$input") | $(gs_quote "$@")"
  if gs_is_dry_run; then
    printf '%s\n' "$line"
    return 0
  fi
  printf '+ %s\n' "$line" >&2
  printf '%s\n' "$input" | "$@" || status=$?
  if ((status != 0)); then
    gs_die "$GS_EXIT_COMMAND_FAILED" "command failed with exit status $status: $line"
  fi
}

# gs_query COMMAND ARGS...: run a read-only command and print its stdout. Queries run
# under --dry-run too: they change nothing and the plan depends on their answers.
gs_query() {
  local status=0
  "$@" || status=$?
  if ((status != 0)); then
    gs_die "$GS_EXIT_COMMAND_FAILED" "query failed with exit status $status: $(gs_quote "$@")"
  fi
}

# --- GPUs ---------------------------------------------------------------------------

# gs_gpu_indices: the index of every GPU nvidia-smi sees, one a line.
gs_gpu_indices() {
  local out
  out=$(gs_query "$NVIDIA_SMI" --query-gpu=index --format=csv,noheader)
  printf '%s\n' "$out" | tr -d ' ' | grep -E '^[0-9]+$' || true
}

# gs_resolve_gpus SPEC ALLOW_ALL: set GPUS to the list of GPU indices that SPEC (an index,
# or `all` where ALLOW_ALL is 1) names, checking that each exists.
gs_resolve_gpus() {
  local spec=$1 allow_all=$2 present
  present=$(gs_gpu_indices)
  [[ -n $present ]] || gs_die "$GS_EXIT_NO_SUCH_GPU" "nvidia-smi lists no GPUs"
  if [[ $spec == all && $allow_all == 1 ]]; then
    mapfile -t GPUS <<<"$present"
    return 0
  fi
  if ! gs_is_uint "$spec"; then
    if [[ $allow_all == 1 ]]; then
      gs_usage_error "--gpu takes a GPU index or 'all', not '$spec'"
    fi
    gs_usage_error "--gpu takes a GPU index, not '$spec'"
  fi
  if ! grep -qx -- "$spec" <<<"$present"; then
    gs_die "$GS_EXIT_NO_SUCH_GPU" "no GPU with index $spec; nvidia-smi lists: $(paste -sd' ' <<<"$present")"
  fi
  GPUS=("$spec")
}

# gs_gpu_field GPU FIELD: one --query-gpu field of one GPU, trimmed.
gs_gpu_field() {
  local out
  out=$(gs_query "$NVIDIA_SMI" -i "$1" --query-gpu="$2" --format=csv,noheader)
  out=${out#"${out%%[![:space:]]*}"}
  printf '%s\n' "${out%"${out##*[![:space:]]}"}"
}

# gs_compute_pids GPU: pids of the compute processes on a GPU, one a line.
gs_compute_pids() {
  local out
  out=$(gs_query "$NVIDIA_SMI" -i "$1" --query-compute-apps=pid --format=csv,noheader)
  printf '%s\n' "$out" | tr -d ' ' | grep -E '^[0-9]+$' || true
}

# gs_refuse_if_busy GPU WHAT: changing MIG mode or instances while a process holds the
# GPU fails half-way, so refuse up front and name the processes.
gs_refuse_if_busy() {
  local pids
  pids=$(gs_compute_pids "$1")
  if [[ -n $pids ]]; then
    gs_refuse "$GS_EXIT_GPU_BUSY" \
      "GPU $1 is in use by process(es) $(paste -sd' ' <<<"$pids"); stop them before $2"
  fi
}
