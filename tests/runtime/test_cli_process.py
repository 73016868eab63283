"""The ``ortviz`` command as a process, where only a process shows it: a reader that goes away
(``ortviz labels | head -1``) and a wheel installed without an ONNX Runtime extra (README,
"Reliability"). Default bundle; nothing here runs an iteration."""

import os
import subprocess
import sys

import pytest

from probes import subprocess_env

ORTVIZ = [sys.executable, "-m", "ortviz"]


def _closed_pipe_run(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``ortviz ARGS`` with stdout a real pipe whose reader has already gone, as after
    ``| head -1`` has read its line: every write meets EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(ORTVIZ + args, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=300, env=subprocess_env())
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["labels"], ["info", "--json"], ["info"], ["layers", "--json"],
                                  ["plugins"], ["providers", "--json"], ["--help"],
                                  ["class-viz", "--help"]], ids=" ".join)
def test_a_reader_that_goes_away_ends_the_command_quietly(args):
    r = _closed_pipe_run(args)
    assert r.returncode == 141 and r.stderr == "", (r.returncode, r.stderr)


def test_head_reads_its_line_and_ortviz_stays_quiet():
    """The real thing: a shell pipeline into head; whether ortviz met EPIPE depends on timing,
    so it exits 0 or quietly with 141, and never says more than head printed."""
    r = subprocess.run(["sh", "-c", f"'{sys.executable}' -m ortviz labels | head -1"],
                       capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert r.stdout == "0 (tench, Tinca tinca)\n", r.stdout
    assert "error" not in r.stderr and "Broken pipe" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_broken_pipe_that_is_not_the_output_is_still_an_error(tmp_path, monkeypatch):
    """Only the output's reader going away is quiet: a BrokenPipeError from anything else (a
    worker's pipe) stays a one-line error, exit 1."""
    import ortviz.cli.inspect as inspect_cli

    from probes import invoke, one_error_line

    def broken(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(inspect_cli, "open_bundle", broken)
    r = invoke("labels")
    assert r.exit_code == 1 and "Broken pipe" in one_error_line(r), r.output


# -- a wheel installed without an ONNX Runtime extra -------------------------------------------

BLOCKER = '''
import sys

class _NoOnnxRuntime:
    """As if no ONNX Runtime extra had been installed."""
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoOnnxRuntime())
'''


@pytest.fixture(scope="module")
def no_runtime_env(tmp_path_factory):
    shim = tmp_path_factory.mktemp("no-onnxruntime")
    (shim / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join([str(shim)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess_env(PYTHONPATH=path)


def _run(args, env, cwd):
    return subprocess.run(ORTVIZ + args, capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd)


@pytest.mark.parametrize("args", [
    ["dream", "--iterations", "1", "--octaves", "1", "-o", "d.png"],
    ["class-viz", "--iterations", "1", "-o", "c.png"],
    ["feature-viz", "--iterations", "1", "-o", "f.png"],
    ["run", "feature-inversion", "--iterations", "1", "-o", "i.png"],
    ["providers"],
    ["atlas", "-o", "site", "--classes", "0", "--channels", "1", "--layers", "_blocks.1"],
], ids=lambda a: a[0] if a[0] != "run" else "run")
def test_without_onnxruntime_a_command_names_the_extras_in_one_line(tmp_path, no_runtime_env, args):
    r = _run(args, no_runtime_env, tmp_path)
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stdout)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: ONNX Runtime is not installed") and \
        all(x in lines[0] for x in ("[cpu]", "[gpu]", "[openvino]")), lines[0]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,says", [(["--help"], "class-viz"), (["labels"], "0 (tench"),
                                       (["info"], "efficientnet-lite0"), (["layers"], "_blocks.1"),
                                       (["plugins"], "feature-visualization")])
def test_without_onnxruntime_what_needs_no_runtime_still_works(tmp_path, no_runtime_env, args, says):
    r = _run(args, no_runtime_env, tmp_path)
    assert r.returncode == 0 and says in r.stdout and "Traceback" not in r.stderr, r.stderr


def test_the_blocker_really_hides_onnxruntime(no_runtime_env):
    r = subprocess.run([sys.executable, "-c", "import onnxruntime"], capture_output=True,
                       text=True, timeout=120, env=no_runtime_env)
    assert r.returncode == 1 and "No module named 'onnxruntime'" in r.stderr, r.stderr
