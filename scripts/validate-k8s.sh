#!/usr/bin/env bash
# Validates every manifest `gpushare k8s render` writes for the shipped scenarios with
# kubernetes-validate --strict (its bundled schemas; no cluster) for two Kubernetes
# versions: 1.33, the API version the manifests are typed against, and the newest the
# validator bundles. Renders fresh into a temporary directory with the binary given
# (default target/debug/gpushare); the committed kubernetes/examples are checked too.
# Installs kubernetes-validate into a venv under target/ (pip's cache makes reruns quick).
set -euo pipefail
cd "$(dirname "$0")/.."
gpushare=${1:-target/debug/gpushare}
versions=(1.33.0 1.37.0)
venv=target/kubernetes-validate-venv

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        echo "validate-k8s: python3 -m venv failed; install python3-venv (apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet "kubernetes-validate==1.37.0" || {
        echo "validate-k8s: could not install kubernetes-validate from PyPI" >&2
        exit 1
    }
fi

fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
for scenario in scenarios/*.toml; do
    name=$(basename "$scenario" .toml)
    "$gpushare" k8s render "$name" --out "$fresh/$name" 2>/dev/null
    "$gpushare" k8s render "$name" --nodes 3 --out "$fresh/$name-nodes" 2>/dev/null
done
# A sharded Job (--per-node shard) for each shipped sweep: 2 shards (each has at least 2 points).
for name in latency-interval-sweep occupancy-mps scaling-resnet50-infer scaling-serve; do
    "$gpushare" k8s render "$name" --nodes 2 --per-node shard --out "$fresh/$name-shards" 2>/dev/null
done
"$gpushare" k8s render resnet50-train-bert-infer --mps-host-ipc --out "$fresh/mps-host-ipc" 2>/dev/null
mapfile -t manifests < <(find "$fresh" kubernetes/examples -name '*.yaml' | sort)
for version in "${versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
    echo "kubernetes-validate --strict -k $version: ${#manifests[@]} files passed"
done
