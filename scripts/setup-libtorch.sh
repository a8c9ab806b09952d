#!/usr/bin/env bash
# Creates .venv-torch (PyPI torch 2.11.0, the libtorch that tch 0.24.0 binds) at the repository
# root, reusing it when it already has that version, then prints the two exports that a
# `cargo build --features torch` needs. Usage:
#   scripts/setup-libtorch.sh                  # create or check, print the exports
#   eval "$(scripts/setup-libtorch.sh)"        # ... and apply them to this shell
#   scripts/with-libtorch.sh cargo build --features torch   # or run one command with them
# The wheel pulls ~4.6 GB of CUDA libraries; the build only needs its headers and libraries,
# not a GPU.
set -euo pipefail

readonly TORCH_VERSION="2.11.0"
# CUDA's C runtime headers beside the wheel's runtime package: the shim's CUDA-graph part
# includes cuda_runtime.h, which needs them (134 KB; the wheel does not pull them).
readonly CUDA_CRT="nvidia-cuda-crt==13.0.88"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly venv="${repo_root}/.venv-torch"

installed_version() {
    "${venv}/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true
}

has_crt_headers() {
    compgen -G "${venv}/lib/python3*/site-packages/nvidia/cu13/include/crt/host_config.h" >/dev/null
}

if [[ "$(installed_version)" != "${TORCH_VERSION}" ]]; then
    # Progress goes to stderr so that stdout stays the exports, usable with eval.
    echo "setting up ${venv} with torch==${TORCH_VERSION} (large download, a few minutes)" >&2
    [[ -x "${venv}/bin/python" ]] || python3 -m venv "${venv}" >&2
    "${venv}/bin/pip" install --quiet "torch==${TORCH_VERSION}" "${CUDA_CRT}" >&2
elif ! has_crt_headers; then
    echo "adding ${CUDA_CRT} to ${venv}" >&2
    "${venv}/bin/pip" install --quiet "${CUDA_CRT}" >&2
fi

# torch-sys reads LIBTORCH_USE_PYTORCH and asks the `python3` found first on PATH where torch
# lives; build.rs asks the same python for the library folder it links and puts in the rpath.
echo "export LIBTORCH_USE_PYTORCH=1"
echo "export PATH=\"${venv}/bin:\${PATH}\""
