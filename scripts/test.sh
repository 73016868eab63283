#!/usr/bin/env bash
# The whole test suite, in two stages:
#   1. export environment: build bundles from torch nets, check the lowered gradients against
#      the training build, torch float64 autograd and finite differences; save references.
#   2. runtime environment (stock onnxruntime, no torch): the same bundles and the embedded
#      default on stock onnxruntime, the engine, the techniques, the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/envs.sh both
export ORTVIZ_TEST_ARTIFACTS=${ORTVIZ_TEST_ARTIFACTS:-$PWD/build/test-artifacts}
rm -rf "$ORTVIZ_TEST_ARTIFACTS"; mkdir -p "$ORTVIZ_TEST_ARTIFACTS"
echo "== stage 1: export environment (onnxruntime-training + torch) =="
.venv-export/bin/python -m pytest tests/export -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
echo "== stage 2: runtime environment (stock onnxruntime) =="
.venv/bin/python -m pytest tests/runtime -q -p no:cacheprovider "$@"
