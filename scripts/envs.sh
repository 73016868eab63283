#!/usr/bin/env bash
# Create (or refresh) the project's environments.
# Usage: scripts/envs.sh demo|runtime|export|openvino|gpu|browser|docs|both|all
#   (both: runtime+export; all: those+openvino+browser+docs)
#   .venv           stock onnxruntime + numpy + pillow + typer + onnx (what ortviz needs to run),
#                   and, for the tests (runtime), pytest and ray for the atlas's optional Ray
#                   executor; `demo` makes it with ortviz[cpu] only (a full one serves it too)
#   .venv-export    onnxruntime-training 1.19.2 (its own runtime) + torch + the default model's
#                   packages: only for `ortviz export` and the exporter's tests
#   .venv-openvino  onnxruntime-openvino (OpenVINO execution provider) instead of onnxruntime, no
#                   torch: the execution-provider tests (tests/providers)
#   .venv-gpu       onnxruntime-gpu (CUDA execution provider), no torch: scripts/check-cuda.sh
#   .venv-docs      the runtime and the pinned documentation tools (mkdocs, mkdocs-material,
#                   mkdocstrings): the documentation site's build and its tests (tests/docs)
# They cannot be one: onnxruntime, onnxruntime-gpu, onnxruntime-openvino and onnxruntime-training
# all install the same `onnxruntime` package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "ortviz environments need Python 3.11 (onnxruntime-training 1.19.2 has no wheels for newer Pythons); set PYTHON=/path/to/python3.11"'

stamp() {  # extras: the files and the extras an environment was made from
  { sha256sum pyproject.toml scripts/envs.sh tests/plugins/*/pyproject.toml; echo "$1"; } | sha256sum | cut -c1-16
}

pipq() {  # dir args...: pip install, quiet; its output (build backends' banners) goes to a log
  local dir=$1; shift
  local log="$dir/.ortviz-pip.log"
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$log" 2>&1; then
    echo "error: pip install $* failed in $dir; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

make_env() {  # dir extras [pre-install...]
  local dir=$1 extras=$2; shift 2
  if [ -f "$dir/.ortviz-stamp" ] && [ "$(cat "$dir/.ortviz-stamp")" = "$(stamp "$extras")" ]; then
    return 0
  fi
  echo "setting up $dir ..." >&2
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  pipq "$dir" --upgrade pip
  if [ $# -gt 0 ]; then
    pipq "$dir" "$@"
  fi
  pipq "$dir" -e ".[$extras]"
  if [ "$dir" = .venv ] && [[ ,$extras, == *,test,* ]]; then  # the tests' third-party plugin, installed as a user would
    pipq "$dir" --no-deps -e tests/plugins/ortviz-saliency
  fi
  "$dir/bin/python" -c "import ortviz, ortviz_models, onnxruntime, numpy, PIL, typer"
  case $extras in  # the build this environment is for really carries its execution provider
    openvino*) "$dir/bin/python" -c "import onnxruntime as o; assert 'OpenVINOExecutionProvider' in o.get_available_providers(), o.get_available_providers()" ;;
    gpu*)      "$dir/bin/python" -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers(), o.get_available_providers()" ;;
  esac
  stamp "$extras" > "$dir/.ortviz-stamp"
  echo "  $dir ready" >&2
}

RUNTIME_EXTRAS=cpu,test,ray  # ray: the atlas's optional executor, tested
runtime()  { make_env .venv $RUNTIME_EXTRAS; }
demo() {  # `make demo` runs ortviz only: ortviz[cpu], no pytest, no ray (a test environment serves)
  if [ -f .venv/.ortviz-stamp ] && [ "$(cat .venv/.ortviz-stamp)" = "$(stamp $RUNTIME_EXTRAS)" ]; then
    return 0
  fi
  make_env .venv cpu
}
export_()  { make_env .venv-export export,torch,lite0,test torch==2.13.0; }
openvino() { make_env .venv-openvino openvino,test; }
docs()     { make_env .venv-docs cpu,docs,test; }
browser() {  # headless Chromium for the atlas's browser test (Debian's package; root installs it)
  command -v chromium >/dev/null 2>&1 && return 0
  echo "installing chromium (apt-get) ..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/tmp/ortviz-apt-chromium.log 2>&1 || { echo "error: apt-get install chromium failed; see /tmp/ortviz-apt-chromium.log" >&2; exit 1; }
}
case "${1:-both}" in
  demo)     demo ;;
  runtime)  runtime ;;
  export)   export_ ;;
  openvino) openvino ;;
  gpu)      make_env .venv-gpu gpu,test "onnxruntime-gpu[cuda,cudnn]" ;;  # CUDA, cuDNN as wheels
  both)     runtime; export_ ;;
  all)      runtime; export_; openvino; browser; docs ;;
  browser)  browser ;;
  docs)     docs ;;
  *) echo "usage: $0 demo|runtime|export|openvino|gpu|browser|docs|both|all" >&2; exit 2 ;;
esac
