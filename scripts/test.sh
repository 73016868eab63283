#!/usr/bin/env bash
# The whole test suite, in five stages:
#   1. export environment: build bundles from torch nets, check the lowered gradients against
#      the training build, torch float64 autograd and finite differences; save references.
#   2. runtime environment (stock onnxruntime, no torch): the same bundles and the embedded
#      default on stock onnxruntime, the engine, the techniques, the CLI.
#   3. OpenVINO environment (onnxruntime-openvino, no torch): every graph of those bundles and of
#      the default wholly on the OpenVINO execution provider (no CPU fallback) against the CPU
#      provider, and the CLI on it. (CUDA, the same tests: scripts/check-cuda.sh, on a GPU machine.)
#   4. the package: a wheel and an sdist built from the repository, installed with plain pip into
#      fresh environments (Python 3.11 and 3.13), the techniques run from another directory.
#   5. the documentation (.venv-docs): the site builds with `mkdocs build --strict`, its
#      measurement tables equal what scripts/docs_tables.py makes of the result files, README
#      stays a front page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/envs.sh all
export ORTVIZ_TEST_ARTIFACTS=${ORTVIZ_TEST_ARTIFACTS:-$PWD/build/test-artifacts}
rm -rf "$ORTVIZ_TEST_ARTIFACTS"; mkdir -p "$ORTVIZ_TEST_ARTIFACTS"
echo "== stage 1: export environment (onnxruntime-training + torch) =="
.venv-export/bin/python -m pytest tests/export -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
echo "== stage 2: runtime environment (stock onnxruntime) =="
.venv/bin/python -m pytest tests/runtime -q -p no:cacheprovider "$@"
echo "== stage 3: OpenVINO environment (onnxruntime-openvino) =="
# Stage 1 writes at least 128 bundles (4 small_resnet, 109 ops/, 15 family_*); fewer means
# stage 3 would test too little. Not checked when pytest arguments select a part of the suite.
expect=$([ $# -eq 0 ] && echo 128 || echo 0)
ORTVIZ_EXPECT_TEST_BUNDLES=${ORTVIZ_EXPECT_TEST_BUNDLES:-$expect} \
  .venv-openvino/bin/python -m pytest tests/providers -q -p no:cacheprovider "$@"
echo "== stage 4: the package (wheel and sdist, fresh environments) =="
.venv/bin/python -m pytest tests/package -q -p no:cacheprovider "$@"
echo "== stage 5: the documentation (mkdocs, strict) =="
NO_MKDOCS_2_WARNING=1 .venv-docs/bin/python -m pytest tests/docs -q -p no:cacheprovider "$@"
