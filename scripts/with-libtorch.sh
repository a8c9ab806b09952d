#!/usr/bin/env bash
# Runs one command with the environment that building the `torch` feature needs, creating
# .venv-torch first if it is missing. Example:
#   scripts/with-libtorch.sh cargo build --release --features torch
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]   (e.g. $0 cargo test --features torch)" >&2
    exit 2
fi
setup="$(dirname "${BASH_SOURCE[0]}")/setup-libtorch.sh"
exports="$("${setup}")"
eval "${exports}"
exec "$@"
