"""The runtime stage run without stage 1's artifacts says so in one line, at collection."""

import os
import subprocess
import sys

from support import HERE


def _pytest(tmp_path, *files):
    env = {**os.environ, "ORTVIZ_TEST_ARTIFACTS": str(tmp_path / "none")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                          cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600)


def test_without_the_export_stage_the_run_stops_at_once_naming_the_stage(tmp_path):
    r = _pytest(tmp_path, "tests/runtime/test_batching.py")
    assert r.returncode == 2, r.stdout[-1500:]
    lines = [l for l in r.stdout.splitlines() if "export stage" in l]
    assert len(lines) == 1 and "run stage 1 first" in lines[0], r.stdout[-1500:]
    assert " passed" not in r.stdout and " failed" not in r.stdout, r.stdout[-1500:]


def test_tests_that_need_no_artifact_still_run_without_it(tmp_path):
    r = _pytest(tmp_path, "tests/runtime/test_imaging.py")
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout[-1500:]
