"""The package as a user installs it: a wheel and an sdist built from this repository, installed
with plain pip into fresh virtual environments, on every Python the package declares that this
machine has (3.11 always; 3.13 where pyenv has it, as on this project's machines), and run
from a directory that is not the repository.

Needs the package registry for the build backend and the runtime dependencies (pip's cache
serves them after the first run).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"


def _pythons() -> list[str]:
    found = [sys.executable]  # the environment's own 3.11
    found += sorted(str(p) for p in PYENV.glob("3.13*/bin/python3.13"))[:1]
    return found


def _run(cmd, cwd=None, env=None, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist, then the wheel built *from the sdist* (python -m build's default), so the sdist
    is checked to hold everything the wheel needs."""
    d = tmp_path_factory.mktemp("dist")
    builder = d / "builder"
    _run([sys.executable, "-m", "venv", builder])
    _run([builder / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "build"])
    src = d / "src"  # a copy without build outputs or environments
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv*", "build", "out", ".git",
                                                             "*.egg-info", "__pycache__"))
    _run([builder / "bin/python", "-m", "build", "-o", d / "out", src])
    wheels, sdists = list((d / "out").glob("*.whl")), list((d / "out").glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list((d / "out").iterdir())
    return wheels[0], sdists[0]


def test_the_package_list_names_every_package_of_ortviz():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ortviz").rglob("__init__.py")}
    assert on_disk - declared == set(), f"packages missing from pyproject.toml: {on_disk - declared}"


def test_wheel_carries_the_model_and_photos_but_no_tests(dist):
    wheel, _ = dist
    names = zipfile.ZipFile(wheel).namelist()
    for need in ("ortviz_models/efficientnet-lite0/manifest.json",
                 "ortviz_models/efficientnet-lite0/weights.bin",
                 "ortviz_models/samples/chelsea.png", "ortviz_models/imagenet_labels.tsv",
                 "ortviz/cli/__init__.py", "ortviz/techniques/deepdream.py"):
        assert need in names, f"{need} not in {wheel.name}"
    manifest = json.loads(zipfile.ZipFile(wheel).read("ortviz_models/efficientnet-lite0/manifest.json"))
    for f in manifest["files"]:  # every file the bundle lists travels with it
        assert f"ortviz_models/efficientnet-lite0/{f}" in names, f
    assert not [n for n in names if n.startswith(("tests/", "bench/", "scripts/"))]


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """``installed(python)``: a fresh venv of that Python with the wheel's ``[cpu]`` installed by
    plain pip (one per Python for the module: the notebook test adds its extra to 3.11's)."""
    wheel, _ = dist
    made = {}

    def make(python):
        if python not in made:
            env_dir = tmp_path_factory.mktemp("venv")
            _run([python, "-m", "venv", env_dir])
            _run([env_dir / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  f"{wheel}[cpu]"])
            made[python] = env_dir
        return made[python]

    return make


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("ORTVIZ_MODELS", "PYTHONPATH")}


@pytest.mark.parametrize("python", _pythons(), ids=lambda p: Path(p).name)
def test_installed_wheel_runs_the_techniques_anywhere(installed, python, tmp_path):
    env_dir = installed(python)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _clean_env()
    ortviz = env_dir / "bin/ortviz"
    quick = {"class-viz": ["--iterations", "2"], "invert": ["--iterations", "2"],
             "dream": ["--iterations", "2", "--octaves", "1", "--max-side", "224"]}
    for cmd, args in quick.items():
        r = _run([ortviz, cmd, *args, "-o", f"{cmd}.png"], cwd=work, env=env)
        side = json.loads((work / f"{cmd}.png.json").read_text())
        assert side["status"] == "complete", (cmd, side["status"], r.stderr)
        assert "site-packages" in side["model"]["bundle"], side["model"]["bundle"]
    r = _run([env_dir / "bin/python", "-c",
              "import ortviz; m = ortviz.load(); from ortviz.bundle.embedded import sample; "
              "print(m.classify(sample())[0]['class'])"], cwd=work, env=env)
    assert r.stdout.split()[-1] == "285", r.stdout  # the bundled cat photo is a cat


# Executes the notebook in a real kernel (ipykernel, started by nbclient from this venv) and
# writes the executed notebook as JSON; a final cell says where ortviz was imported from.
EXECUTE = """
import sys, nbclient, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import ortviz; print('ortviz from', ortviz.__file__)"))
nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(nb, sys.argv[2])
"""


def test_the_example_notebook_runs_in_a_real_kernel_against_the_wheel(dist, installed, tmp_path):
    """examples/tour.ipynb in a fresh kernel of the 3.11 venv with the ``notebook`` extra: each
    technique's cell shows a picture, the long cell shows progress."""
    wheel, _ = dist
    env_dir = installed(sys.executable)
    _run([env_dir / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
          f"{wheel}[cpu,notebook]"])
    work = tmp_path / "elsewhere"
    work.mkdir()
    source = ROOT / "examples" / "tour.ipynb"
    _run([env_dir / "bin/python", "-c", EXECUTE, source, work / "out.ipynb", work], cwd=work,
         env=_clean_env(), timeout=900)
    cells = [c for c in json.loads((work / "out.ipynb").read_text())["cells"]
             if c["cell_type"] == "code"]
    tagged = lambda tag: [c for c in cells if tag in c["metadata"].get("tags", [])]  # noqa: E731
    assert len(tagged("picture")) >= 6, "the notebook lost its technique cells"
    for cell in tagged("picture"):
        kinds = {k for o in cell["outputs"] for k in o.get("data", {})}
        assert "image/png" in kinds, ("".join(cell["source"])[:80], kinds)
    (long,) = tagged("long")
    err = "".join("".join(o["text"]) for o in long["outputs"]
                  if o["output_type"] == "stream" and o["name"] == "stderr")
    assert re.search(r"class-visualization.*96/96", err), err[-500:]  # progress, to the end
    said = "".join("".join(o.get("text", "")) for o in cells[-1]["outputs"])
    assert "site-packages" in said and str(ROOT) not in said, said


def test_installed_wheel_serves_the_browser_page_and_the_contract_url_runs(dist, installed, tmp_path):
    """Issue 24's "done when": from a fresh venv with only the wheel, ``ortviz serve`` and the
    contract URL run DeepDream and a channel visualization to ``done`` in headless Chromium with
    no console error (onnxruntime-web from the wheel: nothing fetched)."""
    wheel, _ = dist
    names = zipfile.ZipFile(wheel).namelist()
    for need in ("index.html", "app.js", "vendor/ort/ort.wasm.min.mjs", "vendor/ort/ort-wasm-simd-threaded.wasm",
                 "vendor/ort/LICENSE", "vendor/ort/VERSION"):
        assert f"ortviz/serve/static/{need}" in names, need
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("headless Chromium is not installed: apt-get install -y chromium (scripts/envs.sh browser)")
    from playwright.sync_api import sync_playwright
    work = tmp_path / "elsewhere"
    work.mkdir()
    server = subprocess.Popen([installed(sys.executable) / "bin/ortviz", "serve", "--port", "0"], cwd=work,
                              env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        base = f"http://127.0.0.1:{found.group(1)}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            errors = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            for technique, objective in (("deepdream", ""), ("feature-viz", "_blocks.10:5")):
                page.goto(f"{base}/?technique={technique}&objective={objective}&iterations=2&seed=0&run=1")
                page.wait_for_function("document.body.dataset.status === 'done' || "
                                       "document.body.dataset.status.startsWith('error')", timeout=300_000)
                assert page.evaluate("document.body.dataset.status") == "done", (technique, errors)
                result = page.evaluate("window.ortvizResult")
                assert result["provider"] == "wasm" and len(result["objective"]) == 2, result
            browser.close()
        assert errors == []
    finally:
        server.terminate()
        server.wait(timeout=30)
