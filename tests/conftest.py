import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as ortviz/__init__.py, before numpy loads
import signal
import sys
from pathlib import Path

# A shell without job control starts a background command ("pytest ... &") with SIGINT
# ignored, and Python then leaves it ignored: every Ctrl-C test would see nothing arrive.
# The suite runs as from a terminal whatever started it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Likewise SIGHUP under nohup: ortviz rightly leaves an ignored SIGHUP ignored, so the hang-up
# tests' subprocesses (which inherit it) would never see theirs.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/support.py, nets.py, ... by name

from support import ARTIFACTS, ARTIFACTS_MARKER  # noqa: E402

# The runtime and provider stages read what stage 1 writes. Run alone without it, their tests
# that need it would fail one by one (76 of them, saying nothing about why): the session stops
# at collection with one line saying which stage to run first. Tests that need no artifact run.


def pytest_collection_modifyitems(config, items):
    if ARTIFACTS_MARKER.is_file():
        return
    needing = [i for i in items if "tests/export/" not in i.nodeid
               and getattr(getattr(i, "module", None), "ARTIFACTS", None) is not None]
    if needing:
        import pytest
        pytest.exit(f"{len(needing)} of the selected tests need the export stage's bundles, not "
                    f"found at {ARTIFACTS}: run stage 1 first (.venv-export/bin/python -m pytest "
                    "tests/export, or make test), or set ORTVIZ_TEST_ARTIFACTS to its output",
                    returncode=2)
