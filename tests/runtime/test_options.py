"""Every option checked before the run, every usage error one line, and odd files (FIFOs,
devices, /proc files, link loops, directories) each named in their own line
(docs/reliability.md). Default bundle; nothing here runs more than one iteration."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ortviz.bundle.embedded import sample

from probes import invoke, one_error_line, only_line, probe, run_probe, subprocess_env

CV = ["class-viz", "--iterations", 1, "--octaves", 1, "--provider", "cpu", "--threads", 1]
DREAM = ["dream", "--iterations", 1, "--octaves", 1, "--max-side", 64, "--provider", "cpu",
         "--threads", 1]


@pytest.mark.parametrize("args,expect", [
    (CV + ["--seed", -1], "--seed must be an integer from 0 to 2**64-1"),
    (CV + ["--threads", 100000], "--threads must be from 1 to"),
    (CV + ["--step", "gpu"], "--step must be one of auto, numpy, graph, got 'gpu'"),
    (CV + ["--step", ""], "--step must be one of auto, numpy, graph, got ''"),
    (CV + ["--class", ""], "--class must not be empty"),
    (CV + ["--class", " "], "--class must not be empty"),
    (CV + ["--class", 1, "--class", 1], "are the same class 1"),
    (CV + ["--class", "flamingo", "--class", 130], "are the same class 130 (flamingo)"),
    (CV + ["--blur-sigma", "1e9"], "--blur-sigma must be at most 32"),
    (CV + ["--lr", "nan"], "--lr must be a finite number, got nan"),
    (CV + ["--lr", "inf"], "--lr must be a finite number, got inf"),
    (CV + ["--l2", "-inf"], "--l2 must be a finite number"),
    (CV + ["--jitter", 224], "--jitter 224 must be less than the model input's side (224 pixels)"),
    (CV + ["--octaves", 60], "--octaves must be at most 16"),
    (CV + ["--octave-scale", "1e9"], "--octave-scale must be greater than 1 and at most 8"),
    (CV + ["--iterations", 10**12], "--iterations must be at most 1e+06"),
    (CV + ["--objective", ""], "must not be empty"),
    (CV + ["--snapshot-every", 1, "--iterations", 5000], "at most 1000"),
    (DREAM + ["--layer", ""], "--layer must not be empty"),
    (DREAM + ["--max-side", 100000], "--max-side must be at most 4096"),
    (DREAM + ["--provider", ""], "--provider must not be empty"),
    (["invert", "--iterations", 1, "--alpha", 0.5, "--provider", "cpu"], "--alpha must be at least 1"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_option_values_are_one_line_before_the_run(tmp_path, args, expect):
    out = tmp_path / "o.png"
    r = invoke(*args, "-o", out)
    line = one_error_line(r)
    assert r.exit_code == 2 and expect in line, line
    assert "wrote" not in r.output and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,expect", [
    (["dream", "--iterations", "x"], "Invalid value for '--iterations'"),
    (["dream", "--no-such-option"], "No such option: --no-such-option"),
    (["dreamx"], "No such command 'dreamx'"),
    (["run", "nope"], "No such command 'nope'"),
    (["info", "a", "b"], "Got unexpected extra argument"),
    (["class-viz", "--class"], "Option '--class' requires an argument"),
])
def test_usage_errors_are_one_line_not_a_box(args, expect):
    r = invoke(*args)
    line = only_line(r)
    assert r.exit_code == 2 and expect in line, line
    assert "╭" not in r.output and "Usage:" not in r.output


def test_a_command_the_allow_list_hides_names_ortviz_plugins():
    r = subprocess.run([sys.executable, "-m", "ortviz", "invert", "--iterations", "1"],
                       capture_output=True, text=True, timeout=300,
                       env=subprocess_env(ORTVIZ_PLUGINS="deepdream"))
    assert r.returncode == 2 and r.stdout == "", r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "No such command 'invert'" in lines[0] and "ORTVIZ_PLUGINS=deepdream hides the technique " \
        "feature-inversion" in lines[0], lines[0]


# -- odd files ---------------------------------------------------------------------------------

def _odd(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path of the given kind, and what its one line says."""
    if kind == "fifo":
        p = tmp_path / "pipe.png"
        os.mkfifo(p)
        return p, "is a FIFO (named pipe)"
    if kind == "device":
        return Path("/dev/zero"), "is a character device"
    if kind == "proc":
        return Path("/proc/self/status"), "is a file of the kernel's /proc"
    if kind == "loop":
        p = tmp_path / "loop.png"
        p.symlink_to(tmp_path / "loop2.png")
        (tmp_path / "loop2.png").symlink_to(p)
        return p, "is a symbolic link loop"
    if kind == "dangling":
        p = tmp_path / "gone.png"
        p.symlink_to(tmp_path / "nowhere.png")
        return p, "which does not exist"
    if kind == "directory":
        p = tmp_path / "folder.png"
        p.mkdir()
        return p, "is a directory"
    raise AssertionError(kind)


KINDS = ["fifo", "device", "proc", "loop", "dangling", "directory"]


@pytest.mark.parametrize("kind", KINDS)
def test_odd_files_given_as_the_image_each_get_their_own_line(tmp_path, kind):
    path, expect = _odd(tmp_path, kind)
    r = invoke(*DREAM, "--image", path, "-o", tmp_path / "o.png")
    line = one_error_line(r)
    assert r.exit_code == 2 and expect in line and str(path) in line, line
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("kind", KINDS[:-1] + ["file", "proc-dir"])
def test_odd_files_given_as_the_bundle_each_get_their_own_line(tmp_path, kind):
    if kind == "file":
        path, expect = sample(), "is not a bundle directory"
    elif kind == "proc-dir":
        path, expect = Path("/proc/self"), "is a file of the kernel's /proc"
    else:
        path, expect = _odd(tmp_path, kind)
    r = invoke("info", path)
    line = one_error_line(r)
    assert r.exit_code == 2 and expect in line, line


@pytest.mark.parametrize("kind", ["fifo", "loop", "directory"])
def test_odd_files_in_the_way_of_the_output_are_refused(tmp_path, kind):
    path, _ = _odd(tmp_path, kind)
    r = run_probe(probe(), "-o", path)
    line = one_error_line(r)
    expect = {"fifo": "a FIFO (named pipe) is in the way of the image",
              "loop": "is a symbolic link loop", "directory": "a directory is in the way"}[kind]
    assert r.exit_code == 2 and expect in line, line


# -- digits int() refuses ----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["²", "①", "¹²", "-²", "٣"])
@pytest.mark.parametrize("where", ["class-viz", "objective", "atlas-classes", "atlas-channels"])
def test_unicode_digits_are_names_not_indices(tmp_path, text, where):
    """``str.isdigit`` takes '²' and '①', which int() refuses: each is looked up as a name (and
    is unknown), one line, exit 2, nothing written."""
    atlas = ["atlas", "--layers", "_blocks.1", "--no-dreams", "--no-inversions", "--examples", 0,
             "--iterations", 1, "--provider", "cpu", "--threads", 1]
    args = {"class-viz": CV + ["--class", text],
            "objective": ["feature-viz", "--iterations", 1, "--provider", "cpu",
                          "--objective", f"class_score({text})"],
            "atlas-classes": atlas + ["--channels", 0, "--classes", text],
            "atlas-channels": atlas + ["--classes", 0, "--channels", text]}[where]
    r = invoke(*args, "-o", tmp_path / ("site" if where.startswith("atlas") else "o.png"))
    line = one_error_line(r)
    expect = f"channel {text!r} is not a number" if where == "atlas-channels" else \
        f"unknown class {text!r}"
    assert r.exit_code == 2 and expect in line, line
    assert not list(tmp_path.iterdir())
