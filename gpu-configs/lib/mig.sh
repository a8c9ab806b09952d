# shellcheck shell=bash disable=SC2034
# (SC2034: variables set here are used by the scripts that source this file.)
# MIG knowledge shared by setup_mig.sh and disable_mig.sh: which GPU models this project
# knows, their GPU instance profiles, the named layouts, and queries of the MIG state.
#
# Sourced after common.sh; expects NVIDIA_SMI to be set by gs_find_nvidia_smi.
# Profiles: NVIDIA Multi-Instance GPU User Guide, "Supported MIG Profiles"
# (https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html).
# The media-extension profiles (+me, +gfx) are left out on purpose: each allows a single
# instance and layouts here are about compute sharing.

readonly MIG_MODELS="A100-40GB A100-80GB H100-80GB H200-141GB"

# Named layouts, as positions in a model's profile table (see mig_profile_table):
# 0 = small 1g, 1 = 1g with double memory, 2 = 2g, 3 = 3g, 4 = 4g, 5 = 7g.
readonly MIG_LAYOUTS="all-1g all-1g-large all-2g all-3g 4g-3g balanced full"

mig_layout_slots() {
  case $1 in
    all-1g) echo "0 0 0 0 0 0 0" ;;
    all-1g-large) echo "1 1 1 1" ;;
    all-2g) echo "2 2 2" ;;
    all-3g) echo "3 3" ;;
    4g-3g) echo "4 3" ;;
    balanced) echo "3 2 0 0" ;;
    full) echo "5" ;;
    *) return 1 ;;
  esac
}

# mig_profile_table MODEL: the model's GPU instance profiles, one a line, as
# "name compute_slices memory_slices max_instances", smallest first. A GPU has 7 compute
# slices and 8 memory slices.
mig_profile_table() {
  local sizes
  case $1 in
    A100-40GB) sizes="5gb 10gb 10gb 20gb 20gb 40gb" ;;
    A100-80GB | H100-80GB) sizes="10gb 20gb 20gb 40gb 40gb 80gb" ;;
    H200-141GB) sizes="18gb 35gb 35gb 71gb 71gb 141gb" ;;
    *) return 1 ;;
  esac
  local -a memory
  read -r -a memory <<<"$sizes"
  printf '%s\n' \
    "1g.${memory[0]} 1 1 7" \
    "1g.${memory[1]} 1 2 4" \
    "2g.${memory[2]} 2 2 3" \
    "3g.${memory[3]} 3 4 2" \
    "4g.${memory[4]} 4 4 1" \
    "7g.${memory[5]} 7 8 1"
}

# mig_model_for_name NAME: the model key for an nvidia-smi GPU name, or fail. Variants
# whose profiles differ or are not checked here (H100 NVL with 94 GB, H200 NVL, GH200)
# are refused rather than guessed.
mig_model_for_name() {
  case $1 in
    *A100*40GB*) echo A100-40GB ;;
    *A100*80GB*) echo A100-80GB ;;
    *H100*NVL* | *H100*94GB* | *H100*96GB* | *GH200*) return 1 ;;
    *"H100 80GB"* | *"H100 PCIe"* | *H100-SXM5-80GB*) echo H100-80GB ;;
    *H200*NVL*) return 1 ;;
    *H200*) echo H200-141GB ;;
    *) return 1 ;;
  esac
}

# mig_layout_profiles MODEL LAYOUT: the layout's profile names, comma-separated.
mig_layout_profiles() {
  local slots slot out="" table
  slots=$(mig_layout_slots "$2") || return 1
  mapfile -t table < <(mig_profile_table "$1" | cut -d' ' -f1)
  for slot in $slots; do
    out+="${out:+,}${table[$slot]}"
  done
  printf '%s\n' "$out"
}

# mig_check_profiles MODEL LIST: print why a comma-separated profile list cannot be
# created on one GPU of MODEL (unknown name, too many of one profile, more slices than
# the GPU has), or print nothing when it fits. The driver still checks placement.
mig_check_profiles() {
  local model=$1 name compute memory max profile count
  local total_compute=0 total_memory=0
  local -a requested
  local -A compute_of=() memory_of=() max_of=() count_of=()
  while read -r name compute memory max; do
    compute_of[$name]=$compute memory_of[$name]=$memory max_of[$name]=$max
  done < <(mig_profile_table "$model")
  IFS=, read -r -a requested <<<"$2"
  ((${#requested[@]} > 0)) || { echo "no profiles given"; return 0; }
  for profile in "${requested[@]}"; do
    if [[ -z $profile ]]; then
      echo "empty profile name in the list"
      return 0
    fi
    if [[ -z ${compute_of[$profile]-} ]]; then
      echo "unknown profile '$profile'"
      return 0
    fi
    count_of[$profile]=$((${count_of[$profile]-0} + 1))
    total_compute=$((total_compute + ${compute_of[$profile]}))
    total_memory=$((total_memory + ${memory_of[$profile]}))
  done
  for profile in "${!count_of[@]}"; do
    count=${count_of[$profile]}
    if ((count > ${max_of[$profile]})); then
      echo "$count instances of $profile requested, at most ${max_of[$profile]} fit"
      return 0
    fi
  done
  if ((total_compute > 7 || total_memory > 8)); then
    echo "the profiles need $total_compute of 7 compute slices and $total_memory of 8 memory slices"
  fi
}

# mig_sort_profiles MODEL LIST: LIST largest first. The driver places each new instance
# at the first free position its profile allows, so creating large instances first
# avoids small ones blocking the positions a large one needs.
mig_sort_profiles() {
  local -a requested
  local -A compute_of=() memory_of=()
  local name compute memory _ profile
  while read -r name compute memory _; do
    compute_of[$name]=$compute memory_of[$name]=$memory
  done < <(mig_profile_table "$1")
  IFS=, read -r -a requested <<<"$2"
  for profile in "${requested[@]}"; do
    printf '%s %s %s\n' "${compute_of[$profile]}" "${memory_of[$profile]}" "$profile"
  done | sort -s -k1,1nr -k2,2nr | cut -d' ' -f3 | paste -sd,
}

# mig_print_tables: the profiles and layouts of every model.
mig_print_tables() {
  local model layout name compute memory max
  for model in $MIG_MODELS; do
    echo "$model profiles (name: compute slices of 7, memory slices of 8, max instances):"
    while read -r name compute memory max; do
      printf '  %-9s %s/7 %s/8 x%s\n' "$name" "$compute" "$memory" "$max"
    done < <(mig_profile_table "$model")
    echo "$model layouts:"
    for layout in $MIG_LAYOUTS; do
      printf '  %-13s %s\n' "$layout" "$(mig_layout_profiles "$model" "$layout")"
    done
  done
}

# mig_mode GPU: "current pending" MIG mode, each Enabled, Disabled or N/A.
mig_mode() {
  local out current pending
  out=$(gs_gpu_field "$1" mig.mode.current,mig.mode.pending)
  IFS=, read -r current pending <<<"$out"
  current=${current//[][ ]/} pending=${pending//[][ ]/}
  printf '%s %s\n' "${current:-N/A}" "${pending:-N/A}"
}

# mig_count_instances GPU -lgi|-lci: how many GPU (-lgi) or compute (-lci) instances
# exist. nvidia-smi exits non-zero when there are none, so its status is not an error.
mig_count_instances() {
  local out
  out=$("$NVIDIA_SMI" mig -i "$1" "$2" 2>/dev/null || true)
  grep -cE 'MIG ([0-9]+c\.)?[0-9]+g\.' <<<"$out" || true
}
