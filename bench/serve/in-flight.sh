#!/usr/bin/env bash
# Latency of two batches in flight against one (`gpushare serve --max-batches-in-flight`):
# BERT-base (bf16, batch 32, 2 ms queue delay) served at one fixed open-loop Poisson rate,
# in the order 2, 1, 1, 2 so a drift over the call favours neither, with the server on
# CPUs 0-7 and the load generator on 8-15 when the host has 16 or more. Prints one line per
# run; each run's load report (p99-N-inflightK.json), the server's /metrics after it and
# the servers' stderr (logs.txt) go to $OUT. About 1 minute on the H200.
#
# Usage: OUT=DIR bench/serve/in-flight.sh   (on a GPU host, in the repository root)
# Environment: B [target/gpu-check-torch/gpushare-bin] a torch build of gpushare, RATE
# [3500] requests/s, DUR [8] seconds per run, MODEL_FLAGS ["--model bert-base --precision
# bf16"]; for a check without a GPU: B=target/debug/gpushare RATE=200 DUR=2
# MODEL_FLAGS="--model test.delay --input-shape 128 --dtype i64 --delay 2ms".
set -u
: "${OUT:?set OUT to the directory for the results}"
B=${B:-target/gpu-check-torch/gpushare-bin}
RATE=${RATE:-3500}
DUR=${DUR:-8}
MODEL_FLAGS=${MODEL_FLAGS:---model bert-base --precision bf16}
# The flags are words on purpose: split them once, into an array.
read -r -a model_flags <<< "$MODEL_FLAGS"
if TL=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null); then
    export LD_LIBRARY_PATH=$TL:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
fi
export NO_COLOR=1
mkdir -p "$OUT"
work=$(mktemp -d)
start=$(date +%s)
SRV="taskset -c 0-7"; LD="taskset -c 8-15"
[ "$(nproc)" -ge 16 ] || { SRV=""; LD=""; }
python3 - "$work" "${SEQ:-128}" "${VOCAB:-30522}" <<'PY'
import struct, sys
work, seq, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
open(f"{work}/bert.bin", "wb").write(b"GSTN" + bytes([1, 2, 1, 0]) + struct.pack("<q", seq)
    + struct.pack(f"<{seq}q", *[(i * 7) % vocab for i in range(seq)]))
PY
i=0
for inflight in 2 1 1 2; do
    i=$((i + 1))
    rm -f "$work/ready"
    echo "### run $i in flight $inflight at $(( $(date +%s) - start )) s" >> "$OUT/logs.txt"
    $SRV "$B" serve "${model_flags[@]}" --max-batch-size 32 --max-queue-delay 2ms \
        --max-batches-in-flight "$inflight" --bind 127.0.0.1:0 --ready-file "$work/ready" 2>>"$OUT/logs.txt" &
    pid=$!
    for _ in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.2; done
    [ -s "$work/ready" ] || { echo "no server ready"; kill $pid; exit 1; }
    url="http://$(tr -d '\n' < "$work/ready")"
    $LD "$B" load "$url/v1/infer" --body "$work/bert.bin" --poisson --rate "$RATE" \
        --connections 256 --threads 8 --duration "${DUR}s" --slo-p99 50ms --format json \
        > "$OUT/p99-$i-inflight$inflight.json" 2>>"$OUT/logs.txt"
    python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "$url/metrics" > "$OUT/metrics-$i-inflight$inflight.txt"
    kill -TERM $pid; wait $pid
    python3 - "$OUT/p99-$i-inflight$inflight.json" "$inflight" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency_ms"]
print(f"in flight {sys.argv[2]}: ok {r['throughput_ok_per_s']:.1f}/s P50 {l['p50_ms']:.2f} P99 {l['p99_ms']:.2f} ms errors {r['n_errors']} dropped {r['n_dropped']}")
PY
done
echo "total $(( $(date +%s) - start )) s"
rm -rf "$work"
