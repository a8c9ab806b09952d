#!/usr/bin/env bash
# Renders kubernetes/examples/ from the shipped scenarios with the binary given (default:
# target/debug/gpushare): one directory per scenario, plus a three-node Indexed Job and a
# five-node one that shards scaling-serve's sweep (--per-node shard). The
# token is the placeholder `example`: `gpushare k8s render` without --token, and
# `gpushare k8s run`, use a fresh random one. tests/it/k8s.rs fails when these are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
gpushare=${1:-target/debug/gpushare}
out=kubernetes/examples
rm -rf "$out"
for scenario in scenarios/*.toml; do
    name=$(basename "$scenario" .toml)
    "$gpushare" k8s render "$name" --token example --out "$out/$name" 2>/dev/null
done
"$gpushare" k8s render resnet50-train-bert-infer --token example --nodes 3 \
    --out "$out/resnet50-train-bert-infer-3-nodes" 2>/dev/null
"$gpushare" k8s render scaling-serve --token example --nodes 5 --per-node shard \
    --out "$out/scaling-serve-5-shards" 2>/dev/null
echo "rendered $(find "$out" -name '*.yaml' | wc -l) manifests into $out"
