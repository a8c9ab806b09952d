#!/usr/bin/env bash
# Builds gpushare-test:<version>, the image the `container` isolation backend runs by
# default and its tests use: the gpushare binary cargo already built (target/debug, or
# the one given as $1) with exactly the shared libraries `ldd` names, on no base image
# (FROM scratch). Nothing is pulled. The legacy builder is used (DOCKER_BUILDKIT=0):
# BuildKit needs buildx, which engines such as Debian's docker.io lack.
#
#   scripts/build-test-image.sh [path/to/gpushare]   # prints the image name and id
#
# Debug symbols are stripped from the copy (the image is ~10x smaller; the binary in
# target/ is untouched). The CUDA and NVML libraries gpushare opens at run time are not
# in it: this image runs the CPU workloads only (cpu.synthetic, serve.delay).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/gpushare}
if [ ! -x "$binary" ]; then
    echo "build-test-image: $binary is missing: run \`cargo build\` first" >&2
    exit 1
fi
# The hash of the binary it holds: tests compare it with theirs.
stamp=$(sha256sum "$binary" | cut -d ' ' -f 1)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
image="gpushare-test:$version"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/root/usr/local/bin" "$context/root/tmp"
chmod 1777 "$context/root/tmp"
if command -v objcopy >/dev/null 2>&1; then
    objcopy --strip-debug "$binary" "$context/root/usr/local/bin/gpushare"
else
    cp "$binary" "$context/root/usr/local/bin/gpushare"
fi
# Every library the dynamic loader resolves, at the same path, and the loader itself.
ldd "$binary" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }' | while read -r lib; do
    mkdir -p "$context/root$(dirname "$lib")"
    cp -L "$lib" "$context/root$lib"
done
cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENV PATH=/usr/local/bin
ENTRYPOINT ["/usr/local/bin/gpushare"]
DOCKERFILE
if ! log=$(DOCKER_BUILDKIT=0 docker build --quiet --label gpushare.test-image=1 --label "gpushare.binary=$stamp" -t "$image" "$context" 2>&1); then
    echo "build-test-image: docker build failed:" >&2
    echo "$log" >&2
    exit 1
fi
echo "$image $(docker image inspect --format '{{.Id}}' "$image")"
