#!/usr/bin/env bash
# Runs each model alone through the Rust job (examples/torch_throughput) and through the
# Python PyTorch eager reference (pytorch_eager.py), one run at a time, and prints their
# throughput side by side. For the GPU machine; needs python3 with torch, torchvision and
# transformers, and libtorch on LD_LIBRARY_PATH for the Rust binary.
#
# Usage: bench/reference/compare.sh PATH/TO/torch_throughput [FLAGS FOR BOTH...]
#   e.g. bench/reference/compare.sh ./torch_throughput --steps 30
#        COMPARE_MODELS="gpt2-small vit-b16" bench/reference/compare.sh ./torch_throughput
#        bench/reference/compare.sh --table RUNS.jsonl...   # the table from saved runs
# Every run's JSON line is written to stderr; the table goes to stdout. COMPARE_MODELS
# (space-separated) limits the runs to those models.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 PATH/TO/torch_throughput [FLAGS FOR BOTH...] | $0 --table RUNS.jsonl..." >&2
    exit 2
fi
# Prints the side-by-side table from JSON-lines files of runs.
table() {
    python3 - "$@" <<'EOF'
import json, sys

runs = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
for run in runs:
    if "failed" in run:
        print("FAILED:", run["failed"])
rows = {}
for run in (r for r in runs if "failed" not in r):
    key = (run["model"], run["mode"], run["precision"], run["channels_last"], run["batch_size"])
    rows.setdefault(key, {})[run["runtime"]] = run
print(f"{'model':<11} {'mode':<5} {'prec':<4} {'cl':<2} {'batch':>5} {'tch/s':>9} {'eager/s':>9} {'ratio':>6} {'tch MiB':>8} {'eager MiB':>9}")
for key, by in rows.items():
    tch, eager = by.get("tch", {}), by.get("eager", {})
    t, e = tch.get("throughput_items_per_s"), eager.get("throughput_items_per_s")
    mib = lambda r: f"{r['memory_peak_bytes'] / 2**20:.0f}" if r.get("memory_peak_bytes") else "-"
    ratio = f"{t / e:.2f}" if t and e else "-"
    print(f"{key[0]:<11} {key[1]:<5} {key[2]:<4} {'y' if key[3] else 'n':<2} {key[4]:>5} "
          f"{t or 0:>9.1f} {e or 0:>9.1f} {ratio:>6} {mib(tch):>8} {mib(eager):>9}")
EOF
}

if [[ "$1" == --table ]]; then
    shift
    table "$@"
    exit 0
fi
rust_bin="$1"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="$(mktemp)"
trap 'rm -f "${results}"' EXIT

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

for config in "${configs[@]}"; do
    read -r -a words <<<"${config}"
    if [[ -n "${COMPARE_MODELS:-}" && " ${COMPARE_MODELS} " != *" ${words[0]} "* ]]; then
        continue
    fi
    flags=(--model "${words[0]}" --mode "${words[1]}" --precision "${words[2]}" "${words[@]:3}" --json "$@")
    for runtime in tch eager; do
        if [[ "${runtime}" == tch ]]; then
            line="$("${rust_bin}" "${flags[@]}")" || line="{\"failed\": \"${config} tch\"}"
        else
            line="$(python3 "${here}/pytorch_eager.py" "${flags[@]}")" \
                || line="{\"failed\": \"${config} eager\"}"
        fi
        echo "${line}" >&2
        echo "${line}" >>"${results}"
    done
done

table "${results}"
