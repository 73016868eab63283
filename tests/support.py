"""Paths every stage's tests share (imported by name: ``from support import ARTIFACTS``; the
fixtures live in each stage's ``conftest.py``)."""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EMBEDDED = ROOT / "models" / "efficientnet-lite0"  # the embedded default bundle

# Bundles and torch reference values the export stage writes and the runtime stage checks.
ARTIFACTS = Path(os.environ.get("ORTVIZ_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
ARTIFACTS_MARKER = ARTIFACTS / "small_resnet_torchscript" / "manifest.json"  # test_gradients.py
