#!/usr/bin/env bash
# Runs each model alone through the Rust job (examples/torch_throughput) and through the
# Python PyTorch eager reference (pytorch_eager.py), one run at a time, alternating the
# two COMPARE_ROUNDS times per configuration (default 3; the order flips every round,
# tch-eager then eager-tch, so slow drift of the GPU favours neither), and prints each
# side's median throughput with its spread (min-max over the rounds) and the ratio of
# the medians with the range of the per-round ratios. Single runs moved by up to 30%
# between days on the H200; ratios measured side by side, alternating, move far less.
# For the GPU machine; needs python3 with torch, torchvision and transformers, and
# libtorch on LD_LIBRARY_PATH for the Rust binary.
#
# Usage: bench/reference/compare.sh PATH/TO/torch_throughput [FLAGS FOR BOTH...]
#   e.g. bench/reference/compare.sh ./torch_throughput --steps 30
#        COMPARE_MODELS="gpt2-small vit-b16" bench/reference/compare.sh ./torch_throughput
#        COMPARE_CONFIGS="1 2 3" bench/reference/compare.sh ./torch_throughput  # a subset
#        COMPARE_DRY_RUN=1 bench/reference/compare.sh ./torch_throughput  # print the runs
#        bench/reference/compare.sh --list      # the 12 configurations, numbered
#        bench/reference/compare.sh --table RUNS.jsonl...   # the table from saved runs
# Every run's JSON line (with its round) is written to stderr; the table goes to stdout.
# COMPARE_MODELS (space-separated) limits the runs to those models, COMPARE_CONFIGS to
# those configuration numbers (from --list).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 PATH/TO/torch_throughput [FLAGS FOR BOTH...] | $0 --list | $0 --table RUNS.jsonl..." >&2
    exit 2
fi

# model, mode, precision, then extra flags; each model's default batch size.
configs=(
    "resnet50 train fp32"
    "resnet50 train bf16 --channels-last"
    "resnet50 infer bf16 --channels-last"
    "bert-base train fp32"
    "bert-base train bf16"
    "bert-base infer bf16"
    "gpt2-small train fp32"
    "gpt2-small train bf16"
    "gpt2-small infer bf16"
    "vit-b16 train fp32"
    "vit-b16 train bf16"
    "vit-b16 infer bf16"
)

# Prints the side-by-side table from JSON-lines files of runs: medians over the rounds,
# their min-max, the ratio of the medians and the range of the per-round ratios. Files
# written before rounds existed (no "round" field) read as one round each.
table() {
    python3 - "$@" <<'EOF'
import json, statistics, sys

runs = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
for run in runs:
    if "failed" in run:
        print("FAILED:", run["failed"])
rows = {}
for run in (r for r in runs if "failed" not in r):
    key = (run["model"], run["mode"], run["precision"], run["channels_last"], run["batch_size"])
    rows.setdefault(key, {}).setdefault(run["runtime"], []).append(run)


def spread(values):
    return f"{min(values):.0f}-{max(values):.0f}" if len(values) > 1 else "-"


def mib(rs):
    if rs and all(r.get("memory_peak_bytes") for r in rs):
        return f"{max(r['memory_peak_bytes'] for r in rs) / 2**20:.0f}"
    return "-"


print(f"{'model':<11} {'mode':<5} {'prec':<4} {'cl':<2} {'batch':>5} {'n':>2} "
      f"{'tch/s':>8} {'(min-max)':>13} {'eager/s':>8} {'(min-max)':>13} {'ratio':>6} "
      f"{'(min-max)':>11} {'tch MiB':>8} {'eager MiB':>9}")
for key, by in rows.items():
    tch, eager = by.get("tch", []), by.get("eager", [])
    t = [r["throughput_items_per_s"] for r in tch]
    e = [r["throughput_items_per_s"] for r in eager]
    tm = statistics.median(t) if t else 0.0
    em = statistics.median(e) if e else 0.0
    # Each round's tch run against the same round's eager run.
    by_round = {}
    for r in tch + eager:
        by_round.setdefault(r.get("round", 0), {})[r["runtime"]] = r["throughput_items_per_s"]
    ratios = [v["tch"] / v["eager"] for v in by_round.values() if v.get("tch") and v.get("eager")]
    ratio = f"{tm / em:.2f}" if tm and em else "-"
    ratio_spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else "-"
    print(f"{key[0]:<11} {key[1]:<5} {key[2]:<4} {'y' if key[3] else 'n':<2} {key[4]:>5} "
          f"{min(len(t), len(e)):>2} {tm:>8.1f} {spread(t):>13} {em:>8.1f} {spread(e):>13} "
          f"{ratio:>6} {ratio_spread:>11} {mib(tch):>8} {mib(eager):>9}")
EOF
}

if [[ "$1" == --table ]]; then
    shift
    table "$@"
    exit 0
fi
if [[ "$1" == --list ]]; then
    for idx in "${!configs[@]}"; do
        echo "$((idx + 1))  ${configs[idx]}"
    done
    exit 0
fi
rust_bin="$1"
shift
extra=("$@")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="$(mktemp)"
trap 'rm -f "${results}"' EXIT
rounds="${COMPARE_ROUNDS:-3}"
if [[ ! "${rounds}" =~ ^[1-9][0-9]*$ ]]; then
    echo "COMPARE_ROUNDS must be a positive integer, got ${rounds}" >&2
    exit 2
fi

# One run of configuration $1 on runtime $2 (tch or eager) in round $3; appends its line.
one_run() {
    local config=$1 runtime=$2 round=$3 line
    local words
    read -r -a words <<<"${config}"
    local flags=(--model "${words[0]}" --mode "${words[1]}" --precision "${words[2]}" "${words[@]:3}" --json "${extra[@]}")
    if [[ -n "${COMPARE_DRY_RUN:-}" ]]; then
        echo "${runtime} round ${round}: ${flags[*]}"
        return
    fi
    if [[ "${runtime}" == tch ]]; then
        line="$("${rust_bin}" "${flags[@]}")" || line="{\"failed\": \"${config} tch round ${round}\"}"
    else
        line="$(python3 "${here}/pytorch_eager.py" "${flags[@]}")" \
            || line="{\"failed\": \"${config} eager round ${round}\"}"
    fi
    line="$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r["round"] = int(sys.argv[2]); print(json.dumps(r))' "${line}" "${round}")"
    echo "${line}" >&2
    echo "${line}" >>"${results}"
}

for idx in "${!configs[@]}"; do
    config="${configs[idx]}"
    read -r -a words <<<"${config}"
    if [[ -n "${COMPARE_MODELS:-}" && " ${COMPARE_MODELS} " != *" ${words[0]} "* ]]; then
        continue
    fi
    if [[ -n "${COMPARE_CONFIGS:-}" && " ${COMPARE_CONFIGS} " != *" $((idx + 1)) "* ]]; then
        continue
    fi
    for round in $(seq 1 "${rounds}"); do
        if ((round % 2 == 1)); then
            one_run "${config}" tch "${round}"
            one_run "${config}" eager "${round}"
        else
            one_run "${config}" eager "${round}"
            one_run "${config}" tch "${round}"
        fi
    done
done

if [[ -z "${COMPARE_DRY_RUN:-}" ]]; then
    table "${results}"
fi
