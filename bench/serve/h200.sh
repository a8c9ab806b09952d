#!/usr/bin/env bash
# The serving benchmarks for one model, in one command (see README.md beside this file):
#   1. saturation: `gpushare serve` with dynamic batching (max batch B, 2 ms queueing
#      delay) under closed-loop load with 2B connections, against a study of
#      `infer.batch.<model>` at batch size B and the same precision (goal: 90% or better);
#   2. P99 at half that saturation rate, open-loop Poisson, with dynamic batching and
#      without (max batch 1), SLO P99 50 ms.
#
# Usage: bench/serve/h200.sh GPUSHARE MODEL [BATCH] [PRECISION]
#   GPUSHARE   a gpushare binary built with the torch feature (libtorch on the library path)
#   MODEL      resnet50 | bert-base | test.delay (the CPU fixture: checks this script
#              anywhere; it has no infer.batch twin, so step 1's comparison is skipped)
#   BATCH      default 32;  PRECISION  fp32 | bf16, default bf16
# Raw results go to ${OUT:-target/serve-bench}/serve-MODEL/, a table to stdout. Durations:
# SATURATION_S (20), LATENCY_S (30). About 2.5 minutes per model with the defaults.
# THREADS (4) generator threads; OPEN_CONNECTIONS (8 x BATCH) for the open-loop step.
# BODY=u8 sends resnet50 u8 images (raw pixels, a quarter of the bytes, normalized on the
# GPU) instead of f32 ones. bench/serve/side-by-side.sh measures both bodies and both
# models against infer.batch in one call.
# DEVICE (default cuda) runs the server and its infer.batch twin elsewhere: DEVICE=cpu with a
# small BATCH and short durations checks the torch path of this script without a GPU.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,21p' "$0" >&2
    exit 2
fi
gpushare=$1
model=$2
batch=${3:-32}
precision=${4:-bf16}
saturation_s=${SATURATION_S:-20}
latency_s=${LATENCY_S:-30}
device=${DEVICE:-cuda}
# Generator threads: an f32 image is 600 KB, and one thread sending 1 GB/s is a limit.
threads=${THREADS:-4}
# Open loop: at most this many requests in flight (rate x latency must fit, else requests
# wait for a connection and that wait counts in their latency).
open_connections=${OPEN_CONNECTIONS:-$((8 * batch))}
out="${OUT:-target/serve-bench}/serve-${model}"
mkdir -p "${out}"
server_pid=""

# Saves the server's /metrics (batch sizes, backend time per batch) as metrics-$1.txt.
save_metrics() {
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "${url%/v1/infer}/metrics" >"${out}/metrics-$1.txt" || echo "h200.sh: could not read /metrics" >&2
}

stop_server() {
    if [[ -n "${server_pid}" ]]; then
        kill -TERM "${server_pid}" 2>/dev/null || true
        wait "${server_pid}" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# One request body in the compact binary format (src/serve/body.rs): magic, version,
# dtype code, rank, then little-endian dims and data.
python3 - "${model}" "${out}/body.bin" "${BODY:-f32}" <<'PY'
import struct, sys
model, path, body_kind = sys.argv[1], sys.argv[2], sys.argv[3]
if model == "resnet50" and body_kind == "u8":
    n = 3 * 224 * 224
    body = b"GSTN" + bytes([1, 3, 3, 0]) + struct.pack("<3q", 3, 224, 224) \
        + bytes(i % 255 for i in range(n))
elif model == "resnet50":
    n = 3 * 224 * 224
    body = b"GSTN" + bytes([1, 1, 3, 0]) + struct.pack("<3q", 3, 224, 224) \
        + struct.pack(f"<{n}f", *[(i % 255) / 255 for i in range(n)])
elif model == "bert-base":
    body = b"GSTN" + bytes([1, 2, 1, 0]) + struct.pack("<q", 128) \
        + struct.pack("<128q", *[(i * 7) % 30522 for i in range(128)])
else:
    body = b"GSTN" + bytes([1, 1, 1, 0]) + struct.pack("<q", 4) + struct.pack("<4f", 1, 2, 3, 4)
open(path, "wb").write(body)
PY

# Starts the server with max batch $1 and waits until it is warmed up; sets $url.
start_server() {
    local max_batch=$1 ready="${out}/ready-$1" waited=0
    rm -f "${ready}"
    local extra=(--precision "${precision}" --device "${device}")
    if [[ "${model}" == test.delay ]]; then
        extra=(--delay 2ms --delay-per-item 0.1ms --input-shape 4 --dtype f32)
    fi
    "${gpushare}" serve --model "${model}" --max-batch-size "${max_batch}" \
        --max-queue-delay 2ms --bind 127.0.0.1:0 --ready-file "${ready}" "${extra[@]}" \
        2>"${out}/serve-batch${max_batch}.err" &
    server_pid=$!
    while [[ ! -s "${ready}" ]]; do
        kill -0 "${server_pid}" 2>/dev/null || {
            cat "${out}/serve-batch${max_batch}.err" >&2
            echo "h200.sh: the server exited before it was ready" >&2
            exit 1
        }
        sleep 0.5
        waited=$((waited + 1))
        [[ "${waited}" -lt 600 ]] || { echo "h200.sh: no ready server after 300 s" >&2; exit 1; }
    done
    url="http://$(tr -d '\n' <"${ready}")/v1/infer"
}

echo "== ${model}, batch ${batch}, ${precision}: saturation (closed loop, $((2 * batch)) connections, ${saturation_s} s)" >&2
start_server "${batch}"
"${gpushare}" load "${url}" --body "${out}/body.bin" --closed-loop \
    --connections "$((2 * batch))" --threads "${threads}" --duration "${saturation_s}s" \
    --format json >"${out}/saturation.json"
save_metrics saturation
stop_server

if [[ "${model}" != test.delay ]]; then
    echo "== infer.batch.${model} alone, same batch and precision" >&2
    cat >"${out}/infer-batch.toml" <<TOML
name = "infer-batch-${model}"
description = "infer.batch.${model}, batch ${batch}, ${precision}, alone: the serving comparison."

[run]
warmup_s = 5.0
duration_s = ${saturation_s}
repetitions = 1
min_samples = 50
ready_timeout_s = 120

[[modes]]
mode = "exclusive"

[[tenants]]
name = "batch"
workload = "infer.batch.${model}"
params = { batch_size = ${batch}, precision = "${precision}", device = "${device}" }
TOML
    # Exit status 3 is a completed run the verdict calls invalid: the table says so.
    status=0
    "${gpushare}" run "${out}/infer-batch.toml" --out "${out}/infer-batch" --force \
        --format json >"${out}/infer-batch.json" 2>"${out}/infer-batch.err" || status=$?
    if [[ "${status}" -ne 0 && "${status}" -ne 3 ]]; then
        tail -n 5 "${out}/infer-batch.err" >&2
        echo "h200.sh: the infer.batch study failed (exit status ${status})" >&2
        exit 1
    fi
fi

rate=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ok_per_s"] / 2, 1))' \
    "${out}/saturation.json")
for max_batch in "${batch}" 1; do
    echo "== P99 at ${rate} req/s (half of saturation), Poisson, max batch ${max_batch}" >&2
    start_server "${max_batch}"
    "${gpushare}" load "${url}" --body "${out}/body.bin" --poisson --rate "${rate}" \
        --connections "${open_connections}" --threads "${threads}" --duration "${latency_s}s" \
        --slo-p99 50ms --format json >"${out}/p99-batch${max_batch}.json"
    save_metrics "p99-batch${max_batch}"
    stop_server
done

python3 - "${out}" "${model}" "${batch}" "${precision}" <<'PY'
import json, os, sys
out, model, batch, precision = sys.argv[1:]
sat = json.load(open(f"{out}/saturation.json"))
print(f"serve {model}, batch {batch}, {precision}")
line = f"saturation: {sat['throughput_ok_per_s']:.1f} req/s ok, {sat['n_errors']} errors"
path = f"{out}/infer-batch.json"
if os.path.exists(path):
    report = json.load(open(path))
    run = report["analysis"]["runs"][0]
    alone = run["tenants"][0]["throughput_items_per_s"]
    line += f"; infer.batch {alone:.1f} items/s; ratio {sat['throughput_ok_per_s'] / alone:.3f} (goal 0.9)"
    if not run["verdict"]["valid"]:
        problems = "; ".join(f["problem"] for f in run["verdict"].get("failed", []))
        line += f"\n  infer.batch run INVALID: {problems}"
print(line)
def batches(step):
    """Mean batch size and mean backend time per batch (ms) from a saved /metrics."""
    values = {}
    try:
        for line in open(f"{out}/metrics-{step}.txt"):
            name, _, value = line.strip().rpartition(" ")
            if name and not name.startswith("#"):
                values[name] = float(value)
        n = values["gpushare_serve_batch_duration_seconds_count"]
        size = values["gpushare_serve_batch_size_sum"] / n
        ms = 1000 * values["gpushare_serve_batch_duration_seconds_sum"] / n
        return f"{n:.0f} batches, mean size {size:.1f}, mean backend time {ms:.2f} ms"
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return "no batch metrics"
print(f"  saturation server: {batches('saturation')}")
for max_batch in (batch, "1"):
    r = json.load(open(f"{out}/p99-batch{max_batch}.json"))
    lat, slo = r["latency_ms"], r.get("slo") or {}
    print(f"max batch {max_batch:>3}: target {r['target_rate_req_per_s']:.1f} req/s, "
          f"ok {r['throughput_ok_per_s']:.1f}/s, P50 {lat['p50_ms']:.2f} ms, "
          f"P99 {lat['p99_ms']:.2f} ms (supported: {lat['p99_supported']}), "
          f"SLO attainment {slo.get('attainment_fraction', float('nan')):.3f}, "
          f"errors {r['n_errors']}, dropped {r['n_dropped']}")
    print(f"  server: {batches(f'p99-batch{max_batch}')}")
PY
