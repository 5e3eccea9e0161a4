#!/usr/bin/env bash
# `make demo`: the whole system that exists, on the embedded phantom data.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
hm() { echo "+ hypomimia $*" >&2; hypomimia "$@"; }

hm doctor
hm config validate params.yaml
