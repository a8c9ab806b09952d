# shellcheck shell=bash disable=SC2034
# (SC2034: variables set here are used by the scripts that source this file.)
# MPS helpers shared by enable_mps.sh and disable_mps.sh: finding the control daemon of a
# pipe directory, sending it commands, waiting for processes to come and go.
#
# Sourced after common.sh; expects MPS_CONTROL to be set by gs_find_mps_control.
# Reference: NVIDIA Multi-Process Service, "Appendix: Tools and Interface Reference"
# (https://docs.nvidia.com/deploy/mps/appendix-tools-and-interface-reference.html).

# NVIDIA's defaults when CUDA_MPS_PIPE_DIRECTORY / CUDA_MPS_LOG_DIRECTORY are unset.
readonly MPS_DEFAULT_PIPE_DIR=/tmp/nvidia-mps
readonly MPS_DEFAULT_LOG_DIR=/var/log/nvidia-mps

# Polling interval while waiting for the daemon, in seconds.
readonly MPS_POLL_S=0.2

# mps_pids PROGRAM: pids of running processes of an MPS program, one a line. pgrep -x
# would compare against the kernel's 15-character process name, which truncates
# "nvidia-cuda-mps-control", so match the command line's first word instead.
mps_pids() {
  pgrep -f "^([^ ]*/)?$1( |\$)" || true
}

# mps_daemon_pid PIPE_DIR: pid of the control daemon serving PIPE_DIR, or nothing. The
# daemon writes its pid to nvidia-cuda-mps-control.pid in its pipe directory; the pid
# only counts while a control daemon with that pid is running (the file may be stale).
mps_daemon_pid() {
  local pid_file=$1/nvidia-cuda-mps-control.pid pid
  [[ -r $pid_file ]] || return 0
  pid=$(tr -d '[:space:]' <"$pid_file")
  gs_is_uint "$pid" || return 0
  if grep -qx -- "$pid" <<<"$(mps_pids nvidia-cuda-mps-control)"; then
    printf '%s\n' "$pid"
  fi
}

# mps_command PIPE_DIR COMMAND: send one command to the daemon of PIPE_DIR.
mps_command() {
  gs_run_with_input "$2" env "CUDA_MPS_PIPE_DIRECTORY=$1" "$MPS_CONTROL"
}

# mps_server_pids PIPE_DIR: pids of the MPS servers of the daemon of PIPE_DIR (read-only).
mps_server_pids() {
  local out
  out=$(printf 'get_server_list\n' | gs_query env "CUDA_MPS_PIPE_DIRECTORY=$1" "$MPS_CONTROL")
  printf '%s\n' "$out" | tr -s ' ' '\n' | grep -E '^[0-9]+$' || true
}

# mps_wait_for_daemon PIPE_DIR TIMEOUT_S: `nvidia-cuda-mps-control -d` returns once it
# has forked; commands sent before its control socket exists would fail.
mps_wait_for_daemon() {
  gs_is_dry_run && return 0
  local tries=$(($2 * 5))
  until [[ -e $1/control ]]; do
    if ((tries-- <= 0)); then
      gs_die "$GS_EXIT_TIMEOUT" \
        "the MPS control daemon did not create $1/control within $2 s; see the logs in its log directory"
    fi
    sleep "$MPS_POLL_S"
  done
}

# mps_wait_gone TIMEOUT_S PIDS...: wait until none of PIDS is a running MPS control
# daemon or server.
mps_wait_gone() {
  local timeout_s=$1 tries=$(($1 * 5)) pid left
  shift
  while :; do
    left=()
    for pid in "$@"; do
      if grep -qx -- "$pid" <<<"$(mps_pids nvidia-cuda-mps-control; mps_pids nvidia-cuda-mps-server)"; then
        left+=("$pid")
      fi
    done
    ((${#left[@]} > 0)) || return 0
    if ((tries-- <= 0)); then
      gs_die "$GS_EXIT_TIMEOUT" \
        "MPS process(es) ${left[*]} still running after $timeout_s s;" \
        "if clients are still connected, stop them (or kill ${left[*]}) and run this again"
    fi
    sleep "$MPS_POLL_S"
  done
}
