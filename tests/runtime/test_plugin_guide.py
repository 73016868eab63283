"""The plugin guide (docs/plugins.md), as written: its two files are copied into a package, installed with
pip (into a target folder put on the path, so this environment stays as it is) and run."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _guide_files() -> dict[str, str]:
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text[text.index("## Writing a technique plugin"):]
    section = section[:section.index("\n## ", 5)]
    files = {}
    for body in re.findall(r"```(?:python|toml)\n(.*?)```", section, re.S):
        first = body.splitlines()[0]
        if first.startswith("# ") and first[2:].strip().endswith((".py", ".toml")):
            files[first[2:].strip()] = body
    return files


def test_the_guides_plugin_installs_and_runs(tmp_path):
    files = _guide_files()
    assert set(files) == {"my_technique.py", "pyproject.toml"}, set(files)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for name, body in files.items():
        (pkg / name).write_text(body)
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-deps", "--target", str(target), str(pkg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("ORTVIZ_PLUGINS", None)
    listed = subprocess.run([sys.executable, "-m", "ortviz", "plugins", "--json"], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    mine = [p for p in json.loads(listed.stdout) if p["name"] == "my-technique"]
    assert mine and mine[0]["package"] == "ortviz-my-technique" and mine[0]["version"] == "0.1.0", listed.stdout
    out = tmp_path / "mine.png"
    r = subprocess.run([sys.executable, "-m", "ortviz", "my-technique", "--iterations", "2",
                        "-o", str(out)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads(out.with_suffix(".png.json").read_text())
    assert meta["status"] == "complete" and meta["layer"] == "_blocks.10" and meta["timing"]["iterations"] == 2
    assert (meta["params"]["param"], meta["params"]["transforms"]) == ("pixel", "light")
    # the loop's options reach the guide's technique, and it really moves the photo
    spec = tmp_path / "spec.png"
    r = subprocess.run([sys.executable, "-m", "ortviz", "my-technique", "--iterations", "3",
                        "--param", "fft", "--transforms", "standard", "--lr", "0.05", "-o", str(spec)],
                       env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads(spec.with_suffix(".png.json").read_text())
    assert (meta["params"]["param"], meta["params"]["transforms"]) == ("fft", "standard")
    assert meta["timing"]["iterations"] == 3 and meta["final_objective"] > meta["objective_first"], meta
    r = subprocess.run([sys.executable, "-m", "ortviz", "my-technique", "--transforms", "heavy",
                        "-o", str(tmp_path / "bad.png")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --transforms must be one of none, light, standard, wide"], r.stderr
