#!/usr/bin/env bash
# Create (or refresh) the project's two environments. Usage: scripts/envs.sh runtime|export|both
#   .venv         stock onnxruntime + numpy + pillow + typer + onnx (what ortviz needs to run)
#   .venv-export  onnxruntime-training 1.19.2 (its own runtime) + torch + the default model's
#                 packages: only for `ortviz export` and the exporter's tests
# The two cannot be one: onnxruntime, onnxruntime-gpu and onnxruntime-training all install
# the same `onnxruntime` package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "ortviz environments need Python 3.11 (onnxruntime-training 1.19.2 has no wheels for newer Pythons); set PYTHON=/path/to/python3.11"'

stamp() { sha256sum pyproject.toml scripts/envs.sh tests/plugins/*/pyproject.toml | sha256sum | cut -c1-16; }

make_env() {  # dir extras [pre-install...]
  local dir=$1 extras=$2; shift 2
  if [ -f "$dir/.ortviz-stamp" ] && [ "$(cat "$dir/.ortviz-stamp")" = "$(stamp)" ]; then
    return 0
  fi
  echo "setting up $dir ..." >&2
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  if [ $# -gt 0 ]; then
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v '^WARNING: Location' || true
  fi
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]" 2>&1 | grep -v '^WARNING: Location' || true
  if [ "$dir" = .venv ]; then  # the third-party example plugin, installed as a user would
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e tests/plugins/ortviz-saliency 2>&1 | grep -v '^WARNING: Location' || true
  fi
  "$dir/bin/python" -c "import ortviz, onnxruntime, numpy, PIL, typer"
  stamp > "$dir/.ortviz-stamp"
}

case "${1:-both}" in
  runtime) make_env .venv cpu,test ;;
  export)  make_env .venv-export export,torch,lite0,test torch==2.13.0 ;;
  both)    make_env .venv cpu,test; make_env .venv-export export,torch,lite0,test torch==2.13.0 ;;
  *) echo "usage: $0 runtime|export|both" >&2; exit 2 ;;
esac
