#!/usr/bin/env bash
# Serving against batch inference, side by side in one call (see README.md beside this file):
# for REPS repetitions, alternating, each model's `infer.batch.<model>` alone at batch BATCH
# and PRECISION, then `gpushare serve` saturated (closed loop, SAT_CONNECTIONS) with
# each body kind: resnet50 with f32 bodies and with u8 bodies (raw pixels, normalized on the
# GPU), bert-base with i64 token ids. A body kind with the suffix `:pipelined` (e.g.
# `u8:pipelined`) runs the server with `--max-batches-in-flight 2`, `:serial` with 1 (the
# default since 2026-12-02; results recorded before, under `u8` and `i64`, ran with 2).
# The suffix `:graphs` (e.g. `u8:graphs`) runs it with `--cuda-graphs`; its ratio is against
# infer.batch with `cuda_graph = true` when INFER_VARIANTS includes `graph`.
# Then, once per body kind, P99 at half its
# median saturation rate (open loop, Poisson, SLO P99 50 ms). Prints a table of medians with their
# spread (min..max over the repetitions) and the serve / infer.batch ratios per repetition
# (goal: resnet50 0.9, bert-base 0.95).
#
# Usage: bench/serve/side-by-side.sh GPUSHARE
#   GPUSHARE   a gpushare binary built with the torch feature; the bundle of
#              `scripts/gpu-check.sh build-torch` is target/gpu-check-torch/gpushare-bin.
#              When python3 imports torch, its libtorch goes on LD_LIBRARY_PATH.
# Environment (defaults in brackets): MODELS ["resnet50 bert-base"], BATCH [32],
# PRECISION [bf16], REPS [3], SATURATION_S [8] seconds per saturation and infer.batch
# window, WARMUP_S [3] infer.batch warm-up, LATENCY_S [8] per P99 run, THREADS [8]
# generator threads, RESNET_BODIES ["f32 u8"] resnet50's and BERT_BODIES ["i64"] bert-base's
# body kinds, INFER_VARIANTS ["eager"] the infer.batch runs per repetition (`eager`, `graph`:
# `cuda_graph = true`; both: "eager graph"), SAT_CONNECTIONS
# [4 x BATCH] closed-loop clients (enough to keep a batch running, one assembled and the
# next one queueing), DEVICE [cuda], SERVER_CPUS and LOAD_CPUS [unset] CPU lists for
# `taskset -c` (the server and the infer.batch study on one set, the load generator on
# another, as if the clients ran on another host); TINY=1 serves
# and runs the tiny models (with DEVICE=cpu, a small BATCH and short windows it checks
# this script without a GPU).
# About 6 minutes on the H200 with the defaults. Raw results go to
# ${OUT:-target/serve-bench}/side-by-side/ as at most 4 files: table.txt (what is printed),
# runs.jsonl (every measurement's report, one JSON object a line), metrics.txt (the
# server's /metrics after every serve run: batch sizes, backend and host assembly time per
# batch), logs.txt (stderr of every server and study).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    sed -n '2,36p' "$0" >&2
    exit 2
fi
gpushare=$1
models=${MODELS:-resnet50 bert-base}
batch=${BATCH:-32}
precision=${PRECISION:-bf16}
reps=${REPS:-3}
saturation_s=${SATURATION_S:-8}
warmup_s=${WARMUP_S:-3}
latency_s=${LATENCY_S:-8}
threads=${THREADS:-8}
sat_connections=${SAT_CONNECTIONS:-$((4 * batch))}
infer_variants=${INFER_VARIANTS:-eager}
device=${DEVICE:-cuda}
tiny=${TINY:-0}
out="${OUT:-target/serve-bench}/side-by-side"
work=$(mktemp -d)
mkdir -p "${out}"
: >"${out}/runs.jsonl"
: >"${out}/metrics.txt"
: >"${out}/logs.txt"
server_pid=""
started_at=$(date +%s)
server_cpus=()
load_cpus=()
[[ -n "${SERVER_CPUS:-}" ]] && server_cpus=(taskset -c "${SERVER_CPUS}")
[[ -n "${LOAD_CPUS:-}" ]] && load_cpus=(taskset -c "${LOAD_CPUS}")

if torch_lib=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__) + "/lib")' 2>/dev/null); then
    export LD_LIBRARY_PATH="${torch_lib}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
fi
export NO_COLOR=1

stop_server() {
    if [[ -n "${server_pid}" ]]; then
        kill -TERM "${server_pid}" 2>/dev/null || true
        wait "${server_pid}" 2>/dev/null || true
        server_pid=""
    fi
}
cleanup() {
    stop_server
    rm -rf "${work}"
}
trap cleanup EXIT

# Appends one measurement to runs.jsonl: $1 rep, $2 model, $3 what, $4 body kind, $5 report
# JSON file, then KEY=VALUE extras.
record() {
    python3 - "$@" >>"${out}/runs.jsonl" <<'PY'
import json, sys
rep, model, what, body, path = sys.argv[1:6]
entry = {"rep": int(rep), "model": model, "what": what, "body": body}
for extra in sys.argv[6:]:
    key, _, value = extra.partition("=")
    entry[key] = float(value)
entry["report"] = json.load(open(path))
print(json.dumps(entry))
PY
}

# One request body per kind in the binary tensor format (src/serve/body.rs): magic, version,
# dtype code (1 f32, 2 i64, 3 u8), rank, reserved, little-endian dims, then data.
python3 - "${work}" "${tiny}" <<'PY'
import struct, sys
work, tiny = sys.argv[1], sys.argv[2] == "1"
size = 32 if tiny else 224
seq, vocab = (16, 128) if tiny else (128, 30522)
n = 3 * size * size
dims = struct.pack("<3q", 3, size, size)
pixels = bytes((i * 7) % 256 for i in range(n))
mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
floats = [(p / 255 - mean[i // (size * size)]) / std[i // (size * size)] for i, p in enumerate(pixels)]
open(f"{work}/resnet50-f32.bin", "wb").write(
    b"GSTN" + bytes([1, 1, 3, 0]) + dims + struct.pack(f"<{n}f", *floats))
open(f"{work}/resnet50-u8.bin", "wb").write(b"GSTN" + bytes([1, 3, 3, 0]) + dims + pixels)
open(f"{work}/bert-base-i64.bin", "wb").write(
    b"GSTN" + bytes([1, 2, 1, 0]) + struct.pack("<q", seq)
    + struct.pack(f"<{seq}q", *[(i * 7) % vocab for i in range(seq)]))
PY

bodies_of() {
    case "$1" in
        resnet50) echo "${RESNET_BODIES:-f32 u8}" ;;
        bert-base) echo "${BERT_BODIES:-i64}" ;;
        *) echo "h200 side-by-side: unknown model $1 (resnet50 or bert-base)" >&2; exit 2 ;;
    esac
}

# Starts `serve --model $1` with max batch $2 for body kind $3 (`:serial`: one batch in
# flight, `:pipelined`: two) and waits until it is warmed up; sets $url.
start_server() {
    local model=$1 max_batch=$2 body=$3 ready="${work}/ready" waited=0
    rm -f "${ready}"
    local extra=()
    [[ "${tiny}" == 1 ]] && extra+=(--tiny)
    [[ "${body}" == *:serial* ]] && extra+=(--max-batches-in-flight 1)
    [[ "${body}" == *:pipelined* ]] && extra+=(--max-batches-in-flight 2)
    [[ "${body}" == *:graphs* ]] && extra+=(--cuda-graphs)
    echo "### serve ${model} max batch ${max_batch} ${extra[*]} at $(($(date +%s) - started_at)) s" >>"${out}/logs.txt"
    "${server_cpus[@]}" "${gpushare}" serve --model "${model}" --max-batch-size "${max_batch}" \
        --max-queue-delay 2ms --bind 127.0.0.1:0 --ready-file "${ready}" \
        --precision "${precision}" --device "${device}" "${extra[@]}" \
        2>>"${out}/logs.txt" &
    server_pid=$!
    while [[ ! -s "${ready}" ]]; do
        kill -0 "${server_pid}" 2>/dev/null || {
            tail -n 5 "${out}/logs.txt" >&2
            echo "side-by-side: the ${model} server exited before it was ready" >&2
            exit 1
        }
        sleep 0.2
        waited=$((waited + 1))
        [[ "${waited}" -lt 1500 ]] || { echo "side-by-side: no ready server after 300 s" >&2; exit 1; }
    done
    url="http://$(tr -d '\n' <"${ready}")/v1/infer"
}

# Appends the server's /metrics to metrics.txt under a header naming the run.
save_metrics() {
    echo "### $1" >>"${out}/metrics.txt"
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "${url%/v1/infer}/metrics" >>"${out}/metrics.txt" || echo "side-by-side: could not read /metrics" >&2
}

# Runs infer.batch.$1 alone for one window, eagerly or ($3 = graph) as a CUDA graph;
# records it for repetition $2 (body `none` for eager, as before variants, `graph`).
infer_batch() {
    local model=$1 rep=$2 variant=$3 status=0 body=none
    local extra_params=""
    [[ "${tiny}" == 1 ]] && extra_params=", tiny = true"
    case "${variant}" in
        eager) ;;
        graph) extra_params+=", cuda_graph = true"; body=graph ;;
        *) echo "side-by-side: unknown infer.batch variant ${variant} (eager or graph)" >&2; exit 2 ;;
    esac
    cat >"${work}/infer-batch.toml" <<TOML
name = "infer-batch-${model}"
description = "infer.batch.${model}, batch ${batch}, ${precision}, alone: the serving comparison."

[run]
warmup_s = ${warmup_s}
duration_s = ${saturation_s}
repetitions = 1
min_samples = 20
ready_timeout_s = 120

[[modes]]
mode = "exclusive"

[[tenants]]
name = "batch"
workload = "infer.batch.${model}"
params = { batch_size = ${batch}, precision = "${precision}", device = "${device}"${extra_params} }
TOML
    echo "### infer.batch.${model} ${variant} rep ${rep} at $(($(date +%s) - started_at)) s" >>"${out}/logs.txt"
    # Exit status 3 is a completed run the verdict calls invalid: the table says so.
    "${server_cpus[@]}" "${gpushare}" run "${work}/infer-batch.toml" --out "${work}/infer-batch" --force \
        --format json >"${work}/infer-batch.json" 2>>"${out}/logs.txt" || status=$?
    if [[ "${status}" -ne 0 && "${status}" -ne 3 ]]; then
        tail -n 5 "${out}/logs.txt" >&2
        echo "side-by-side: the infer.batch.${model} study failed (exit status ${status})" >&2
        exit 1
    fi
    record "${rep}" "${model}" infer-batch "${body}" "${work}/infer-batch.json"
}

# Saturates `serve --model $1` with body kind $2 for one window; records it for rep $3.
saturate() {
    local model=$1 body=$2 rep=$3
    start_server "${model}" "${batch}" "${body}"
    "${load_cpus[@]}" "${gpushare}" load "${url}" --body "${work}/${model}-${body%%:*}.bin" --closed-loop \
        --connections "${sat_connections}" --threads "${threads}" --duration "${saturation_s}s" \
        --format json >"${work}/load.json" 2>>"${out}/logs.txt"
    save_metrics "saturation ${model} ${body} rep ${rep}"
    stop_server
    record "${rep}" "${model}" saturation "${body}" "${work}/load.json"
}

for rep in $(seq 1 "${reps}"); do
    for model in ${models}; do
        # Odd repetitions run infer.batch first, even ones last, so a drift of the GPU
        # or the host over the call favours neither side of the ratio.
        echo "== rep ${rep}/${reps}: ${model} (infer.batch and serve with $(bodies_of "${model}") bodies), $(($(date +%s) - started_at)) s so far" >&2
        if ((rep % 2 == 1)); then
            for variant in ${infer_variants}; do infer_batch "${model}" "${rep}" "${variant}"; done
        fi
        for body in $(bodies_of "${model}"); do
            saturate "${model}" "${body}" "${rep}"
        done
        if ((rep % 2 == 0)); then
            for variant in ${infer_variants}; do infer_batch "${model}" "${rep}" "${variant}"; done
        fi
    done
done

for model in ${models}; do
    for body in $(bodies_of "${model}"); do
        rate=$(python3 - "${out}/runs.jsonl" "${model}" "${body}" <<'PY'
import json, statistics, sys
path, model, body = sys.argv[1:]
rates = [e["report"]["throughput_ok_per_s"] for e in map(json.loads, open(path))
         if e["what"] == "saturation" and e["model"] == model and e["body"] == body]
print(round(max(statistics.median(rates) / 2, 1.0), 1))
PY
)
        echo "== P99 of ${model} with ${body} bodies at ${rate} req/s (half of saturation), $(($(date +%s) - started_at)) s so far" >&2
        start_server "${model}" "${batch}" "${body}"
        "${load_cpus[@]}" "${gpushare}" load "${url}" --body "${work}/${model}-${body%%:*}.bin" --poisson \
            --rate "${rate}" --connections "$((8 * batch))" --threads "${threads}" \
            --duration "${latency_s}s" --slo-p99 50ms --format json \
            >"${work}/load.json" 2>>"${out}/logs.txt"
        save_metrics "p99 ${model} ${body}"
        stop_server
        record 1 "${model}" p99 "${body}" "${work}/load.json" "rate=${rate}"
    done
done

python3 - "${out}" "${batch}" "${precision}" "$(($(date +%s) - started_at))" <<'PY' | tee "${out}/table.txt"
import json, re, statistics, sys
out, batch, precision, elapsed = sys.argv[1:]
runs = [json.loads(line) for line in open(f"{out}/runs.jsonl")]
goal = {"resnet50": 0.9, "bert-base": 0.95}

def spread(values, fmt="{:.1f}"):
    if not values:
        return "-"
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}..{fmt.format(max(values))}, n={len(values)})")

# Mean batch size, backend and assembly ms per saturation run, from metrics.txt sections.
batch_stats = {}
section, values = None, {}
def close():
    if section and values.get("gpushare_serve_batch_duration_seconds_count"):
        n = values["gpushare_serve_batch_duration_seconds_count"]
        batch_stats[section] = (
            values["gpushare_serve_batch_size_sum"] / n,
            1000 * values["gpushare_serve_batch_duration_seconds_sum"] / n,
            1000 * values.get("gpushare_serve_batch_assembly_seconds_sum", float("nan"))
            / max(values.get("gpushare_serve_batch_assembly_seconds_count", 0), 1))
for line in open(f"{out}/metrics.txt"):
    if line.startswith("### "):
        close()
        section, values = line[4:].strip(), {}
    elif line.strip() and not line.startswith("#"):
        name, _, value = line.strip().rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            pass
close()

print(f"serve vs infer.batch, batch {batch}, {precision}; {elapsed} s in all")
for model in dict.fromkeys(r["model"] for r in runs):
    # alone[variant][rep]: infer.batch eager (body "none") and as a CUDA graph ("graph").
    alone = {"none": {}, "graph": {}}
    for r in runs:
        if r["model"] == model and r["what"] == "infer-batch":
            run = r["report"]["analysis"]["runs"][0]
            alone[r["body"]][r["rep"]] = run["tenants"][0]["throughput_items_per_s"]
            if not run["verdict"]["valid"]:
                problems = "; ".join(f["problem"] for f in run["verdict"].get("failed", []))
                print(f"  note: {model} infer.batch {r['body']} rep {r['rep']} INVALID: {problems}")
    print(f"{model}: infer.batch {spread(list(alone['none'].values()))} items/s")
    if alone["graph"]:
        graph_speedup = [alone["graph"][rep] / alone["none"][rep] for rep in alone["graph"] if alone["none"].get(rep)]
        print(f"{model}: infer.batch as a CUDA graph {spread(list(alone['graph'].values()))} items/s; "
              f"graph / eager {spread(graph_speedup, '{:.3f}')}")
    for body in dict.fromkeys(r["body"] for r in runs if r["model"] == model and r["what"] == "saturation"):
        sat = {r["rep"]: r["report"]["throughput_ok_per_s"] for r in runs
               if r["model"] == model and r["what"] == "saturation" and r["body"] == body}
        errors = sum(r["report"]["n_errors"] for r in runs
                     if r["model"] == model and r["what"] == "saturation" and r["body"] == body)
        # Like for like: a --cuda-graphs server against infer.batch as a graph when it ran.
        twin = "graph" if ":graphs" in body and alone["graph"] else "none"
        ratios = [sat[rep] / alone[twin][rep] for rep in sat if alone[twin].get(rep)]
        stats = [batch_stats[k] for k in batch_stats if k.startswith(f"saturation {model} {body} ")]
        print(f"  serve {body:>8}: {spread(list(sat.values()))} req/s, {errors} errors; "
              f"ratio {spread(ratios, '{:.3f}')} (goal {goal.get(model, 0.9)}) "
              f"against infer.batch {'as a CUDA graph' if twin == 'graph' else 'eager'}")
        if twin == "graph":
            eager_ratios = [sat[rep] / alone["none"][rep] for rep in sat if alone["none"].get(rep)]
            print(f"    against eager infer.batch: ratio {spread(eager_ratios, '{:.3f}')}")
        if stats:
            print(f"    per batch: mean size {statistics.median(s[0] for s in stats):.1f}, "
                  f"backend (submission to outputs) {statistics.median(s[1] for s in stats):.2f} ms, "
                  f"host assembly {statistics.median(s[2] for s in stats):.2f} ms (medians over reps)")
        for r in runs:
            if r["model"] == model and r["what"] == "p99" and r["body"] == body:
                rep = r["report"]
                lat, slo = rep["latency_ms"], rep.get("slo") or {}
                print(f"    P99 at {r['rate']:.1f} req/s (half): ok {rep['throughput_ok_per_s']:.1f}/s, "
                      f"P50 {lat['p50_ms']:.2f} ms, P99 {lat['p99_ms']:.2f} ms "
                      f"(supported: {lat['p99_supported']}), SLO 50 ms attainment "
                      f"{slo.get('attainment_fraction', float('nan')):.3f}, "
                      f"errors {rep['n_errors']}, dropped {rep['n_dropped']}")
PY
