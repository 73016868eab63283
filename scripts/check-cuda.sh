#!/usr/bin/env bash
# The execution-provider tests (tests/providers) on CUDA, for a machine with an NVIDIA GPU; not
# part of `make test` (CI has no GPU). Creates .venv-gpu (onnxruntime-gpu with the CUDA and cuDNN
# wheels, no torch) and runs every graph of the embedded default, and of the bundles under
# ORTVIZ_TEST_ARTIFACTS if the export stage (scripts/test.sh) wrote them, wholly on
# CUDAExecutionProvider (no CPU fallback, TF32 off) against the CPU provider.
# Usage: scripts/check-cuda.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi -L || { echo "check-cuda: no NVIDIA GPU or driver here (nvidia-smi failed)" >&2; exit 2; }
scripts/envs.sh gpu
export ORTVIZ_TEST_ARTIFACTS=${ORTVIZ_TEST_ARTIFACTS:-$PWD/build/test-artifacts}
ORTVIZ_TEST_PROVIDER=cuda .venv-gpu/bin/python -m pytest tests/providers -q -p no:cacheprovider "$@"
