#!/usr/bin/env bash
# The exact recipe of models/efficientnet-lite0: run in the export environment
# (make export-env), from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-export/bin}
"$PY/ortviz" export torch ortviz.export.zoo:efficientnet_lite0 \
  -o models/efficientnet-lite0 --preprocess lite --labels models/imagenet_labels.tsv \
  --name efficientnet-lite0 --size 224 --layers default --force
