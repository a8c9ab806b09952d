#!/usr/bin/env bash
# Compare `gpushare load` with wrk on loopback, and check its open-loop precision.
#
# Starts `gpushare serve --model test.delay --delay 0ms` on 127.0.0.1 (OS-chosen port), then
#   1. wrk and `gpushare load --closed-loop` against a trivial endpoint (GET /healthz) with
#      the same threads, connections and duration: saturation throughput of each generator
#      (goal: gpushare >= 0.8x wrk);
#   2. the same pair against POST /v1/infer (the batching path), for information;
#   3. `gpushare load --rate $RATE` (open loop, constant rate) against /healthz: achieved
#      rate (goal: within 1% of $RATE) and send-lag P99 (goal: below 1 ms).
# Raw outputs and summary.md go to $OUT (default results/loadgen-<date>/).
#
# Environment:
#   GPUSHARE     the gpushare binary (default: gpushare, e.g. target/release/gpushare)
#   DURATION     seconds per run (default 10)
#   CONNECTIONS  connections (default 32)
#   THREADS      wrk -t and gpushare --threads for the closed-loop runs (default 2)
#   RATE         open-loop rate in req/s (default 20000)
#   PRIORITY     prefix for the server and generators, e.g. "nice -n -10" on a machine
#                shared with other work (default: none); recorded in the results
#   OUT          results folder
set -euo pipefail

GPUSHARE=${GPUSHARE:-gpushare}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RATE=${RATE:-20000}
PRIORITY=${PRIORITY:-}
OUT=${OUT:-results/loadgen-$(date +%Y-%m-%d)}

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 not found (used for the summary)" >&2; exit 2; }
mkdir -p "$OUT"
rm -f "$OUT/server.addr"

# shellcheck disable=SC2086 # PRIORITY is a command prefix and must split into words.
$PRIORITY $GPUSHARE serve --model test.delay --delay 0ms --max-queue-delay 0ms \
    --bind 127.0.0.1:0 --ready-file "$OUT/server.addr" 2>"$OUT/server.log" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

for _ in $(seq 300); do
    [[ -s "$OUT/server.addr" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -s "$OUT/server.addr" ]] || { echo "server not ready after 30 s" >&2; exit 1; }
ADDR=$(tr -d '[:space:]' <"$OUT/server.addr")

BODY='{"inputs": {"shape": [4], "dtype": "f32", "data": [1, 2, 3, 4]}}'
printf '%s' "$BODY" >"$OUT/body.json"
cat >"$OUT/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cores: $(nproc)"
    echo "kernel: $(uname -r)"
    echo "wrk: $(wrk --version 2>&1 | head -1)"
    echo "generator: $GPUSHARE"
    echo "priority: ${PRIORITY:-none}"
    echo "duration_s: $DURATION, connections: $CONNECTIONS, threads: $THREADS, rate: $RATE"
} >"$OUT/env.txt"

loadavg() { echo "$1 loadavg: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"; }

run() { # name, command...
    local name=$1
    shift
    loadavg "$name before"
    # shellcheck disable=SC2086
    $PRIORITY "$@" >"$OUT/$name" 2>"$OUT/$name.stderr"
    loadavg "$name after"
    [[ -s "$OUT/$name.stderr" ]] || rm -f "$OUT/$name.stderr"
}

URL="http://$ADDR"
run wrk-healthz.txt wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL/healthz"
run closed-healthz.json "$GPUSHARE" load "$URL/healthz" --closed-loop \
    --connections "$CONNECTIONS" --threads "$THREADS" --duration "${DURATION}s" --format json
run wrk-infer.txt wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s "$OUT/post.lua" "$URL/v1/infer"
run closed-infer.json "$GPUSHARE" load "$URL/v1/infer" --closed-loop --body "$OUT/body.json" \
    --connections "$CONNECTIONS" --threads "$THREADS" --duration "${DURATION}s" --format json
run open-healthz.json "$GPUSHARE" load "$URL/healthz" --rate "$RATE" \
    --connections "$CONNECTIONS" --duration "${DURATION}s" --format json
curl -s "$URL/metrics" >"$OUT/server-metrics.txt" 2>/dev/null || true

python3 - "$OUT" "$RATE" <<'EOF' | tee "$OUT/summary.md"
import json, re, sys
out, rate = sys.argv[1], float(sys.argv[2])

def wrk_rps(name):
    text = open(f"{out}/{name}").read()
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

def load(name):
    return json.load(open(f"{out}/{name}"))

env = open(f"{out}/env.txt").read().strip()
rows = []
for endpoint in ("healthz", "infer"):
    wrk = wrk_rps(f"wrk-{endpoint}.txt")
    ours = load(f"closed-{endpoint}.json")["achieved_rate_req_per_s"]
    goal = "goal >= 0.80" if endpoint == "healthz" else "information"
    ok = "" if endpoint != "healthz" else (" PASS" if ours >= 0.8 * wrk else " MISS")
    rows.append(f"| closed loop /{endpoint} | wrk {wrk:,.0f} req/s, gpushare {ours:,.0f} req/s "
                f"| ratio {ours / wrk:.2f} ({goal}){ok} |")
open_run = load("open-healthz.json")
achieved = open_run["achieved_rate_req_per_s"]
error = abs(achieved - rate) / rate
lag = open_run["send_lag_ms"]
rows.append(f"| open loop {rate:,.0f} req/s /healthz | achieved {achieved:,.1f} req/s, "
            f"dropped {open_run['n_dropped']}, errors {open_run['n_errors']} "
            f"| off by {error * 100:.2f}% (goal <= 1%){' PASS' if error <= 0.01 else ' MISS'} |")
rows.append(f"| open loop send lag | p50 {lag['p50_ms']:.3f} ms, p99 {lag['p99_ms']:.3f} ms, "
            f"max {lag['max_ms']:.3f} ms, late {open_run['n_late']} "
            f"| p99 goal < 1 ms{' PASS' if lag['p99_ms'] < 1.0 else ' MISS'} |")
dispatch = open_run["dispatch_lag_ms"]
rows.append(f"| open loop dispatch lag | p50 {dispatch['p50_ms']:.3f} ms, p99 {dispatch['p99_ms']:.3f} ms, "
            f"max {dispatch['max_ms']:.3f} ms | generator timing alone (information) |")
latency = open_run["latency_ms"]
rows.append(f"| open loop latency | p50 {latency['p50_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms, "
            f"max {latency['max_ms']:.3f} ms | information |")
print("# gpushare load vs wrk (loopback)\n")
print("```\n" + env + "\n```\n")
print("| run | figures | verdict |\n| --- | --- | --- |")
print("\n".join(rows))
EOF
