import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as ortviz/__init__.py, before numpy loads
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tests/nets.py and tests/reference.py import by name

# Bundles and torch reference values the export stage writes and the runtime stage checks.
ARTIFACTS = Path(os.environ.get("ORTVIZ_TEST_ARTIFACTS", HERE.parent / "build" / "test-artifacts"))
