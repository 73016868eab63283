"""``make demo`` builds only what the demo runs: ortviz[cpu], no pytest, no ray (issue 23: a
517 MB environment). scripts/envs.sh runs against a stand-in Python that records every pip
install instead of downloading anything."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a stand-in for python3.11: `-m venv DIR` makes DIR/bin/python (itself), `-m pip ...` is
# recorded in $PIP_LOG, `-c CODE` (the version check, the import check) succeeds
FAKE = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1" = -m ] && [ "$2" = pip ]; then shift 2; echo "$*" >> "$PIP_LOG"; exit 0; fi
exit 0
"""


def _checkout(tmp_path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "envs.sh", repo / "scripts" / "envs.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    for p in (ROOT / "tests" / "plugins").glob("*/pyproject.toml"):
        dest = repo / p.relative_to(ROOT)
        dest.parent.mkdir(parents=True)
        shutil.copy(p, dest)
    fake = tmp_path / "python3.11"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    return repo


def _envs(repo, what, log):
    env = {**os.environ, "PYTHON": str(repo.parent / "python3.11"), "PIP_LOG": str(log)}
    r = subprocess.run(["bash", "scripts/envs.sh", what], cwd=repo, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_make_demo_installs_ortviz_cpu_only_and_a_test_environment_serves_it(tmp_path):
    assert "\tscripts/envs.sh demo\n" in (ROOT / "Makefile").read_text().split("demo:", 1)[1]
    repo = _checkout(tmp_path)
    installs = _envs(repo, "demo", tmp_path / "demo.log")
    assert any(line.endswith("-e .[cpu]") for line in installs), installs
    assert not [line for line in installs if "ray" in line or "test" in line or "saliency" in line]
    assert _envs(repo, "demo", tmp_path / "again.log") == []  # made already: nothing to do
    full = _envs(repo, "runtime", tmp_path / "runtime.log")  # the tests need more: remade
    assert any(line.endswith("-e .[cpu,test,ray]") for line in full), full
    assert any("ortviz-saliency" in line for line in full), full
    assert _envs(repo, "demo", tmp_path / "after.log") == []  # the test environment serves
