"""SIGTERM, SIGHUP and the other ending signals behave like Ctrl-C (docs/reliability.md): the
last good image and an ``interrupted`` sidecar, exit 128 + signal, and no temporary file."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from ortviz._util import signals
from ortviz.run import imagefiles

from probes import dream_until, probe, run_probe, saved, subprocess_env, temp_files


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_keep_the_last_good_image_like_ctrl_c(tmp_path, sig):
    code, stderr = dream_until(tmp_path, sig)
    assert code == 128 + sig, stderr
    assert f"interrupted by {signal.Signals(sig).name}; kept the last good image" in stderr
    assert "Traceback" not in stderr
    meta = json.loads((tmp_path / "d.png.json").read_text())
    assert meta["status"] == "interrupted" and 0 < meta["timing"]["iterations"] < 100000
    with Image.open(tmp_path / "d.png") as im:
        im.load()
        assert max(im.size) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "d.png.json"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGINT])
def test_a_signal_while_the_set_is_written_is_held_until_it_is_whole(tmp_path, monkeypatch, sig):
    real = imagefiles.image_writer
    sent = []

    def writer(path, rgb):
        write = real(path, rgb)

        def interrupted_write(f):
            if not sent:
                sent.append(sig)
                os.kill(os.getpid(), sig)  # arrives while the temporary file is being written
            write(f)
        return interrupted_write

    monkeypatch.setattr(imagefiles, "image_writer", writer)
    out = tmp_path / "p.png"
    r = run_probe(probe(), "-o", out, "--snapshot-every", 1)
    assert sent and r.exit_code == 128 + sig, r.output
    pixels, meta = saved(out)
    assert meta["status"] == "complete" and meta["snapshots"]["count"] == 3
    assert len(list((tmp_path / "p-frames").iterdir())) == 3
    assert not temp_files(tmp_path)


def test_a_signal_before_the_first_iteration_leaves_nothing(tmp_path):
    def stop(ctx, x, t):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends

    r = run_probe(probe(stop, good=0), "-o", tmp_path / "sub" / "p.png")
    assert r.exit_code == 143 and r.output.strip().endswith("interrupted by SIGTERM"), r.output
    assert not list(tmp_path.iterdir())


def test_ignored_and_foreign_handlers_are_left_alone():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with signals.as_interrupts():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


SCRIPT = """
import os, signal, sys
import numpy as np
from ortviz.run import imagefiles
from ortviz.run.write import write_result
from ortviz.render.context import Result
real = imagefiles.image_writer
def writer(path, rgb):
    write = real(path, rgb)
    def killed_while_writing(f):
        os.kill(os.getpid(), signal.SIGTERM)
        write(f)
    return killed_while_writing
imagefiles.image_writer = writer
img = np.zeros((8, 8, 3), np.uint8)
write_result(sys.argv[1], Result(img, None, [img, img], [1.0], "complete", 0.1, 1, []),
             {"status": "complete"})
print("not reached")
"""


def test_a_signal_at_its_default_action_still_waits_for_the_set(tmp_path):
    # Python's API, no CLI: SIGTERM is at its default action (it would kill the process)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "o.png")], capture_output=True,
                       text=True, timeout=120, env=subprocess_env())
    assert r.returncode == -signal.SIGTERM and "not reached" not in r.stdout, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o-frames", "o-sheet.png", "o.gif", "o.png",
                                                          "o.png.json"]
    assert json.loads((tmp_path / "o.png.json").read_text())["snapshots"]["count"] == 3
    assert len(list((tmp_path / "o-frames").iterdir())) == 3 and not temp_files(tmp_path)


def test_ctrl_c_while_plugins_load_ends_the_run_and_is_no_plugins_fault(monkeypatch):
    """A plugin raising KeyboardInterrupt at import is that plugin's failure (skipped, named);
    a real Ctrl-C arriving while plugins load is the user's: held until they are loaded, then
    raised (an atlas interrupted between two pictures used to go on)."""
    from ortviz._util import entrypoints

    class EP:
        def __init__(self, name, load):
            self.name, self.value, self._load, self.dist = name, f"fake:{name}", load, None

        def load(self):
            return self._load()

    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, arriving mid-import
        return "value"

    def raises():
        raise KeyboardInterrupt

    keep = lambda ep, value: value  # noqa: E731
    monkeypatch.setattr(entrypoints.metadata, "entry_points",
                        lambda group: [EP("a", raises), EP("b", lambda: "fine")])
    got = {p.name: p for p in entrypoints.load_group("g", keep)}
    assert got["a"].value is None and got["a"].error.startswith("KeyboardInterrupt"), got["a"]
    assert got["b"].value == "fine" and got["b"].error is None
    loaded = []
    monkeypatch.setattr(entrypoints.metadata, "entry_points",
                        lambda group: [EP("a", ctrl_c), EP("b", lambda: loaded.append(1) or "fine")])
    with signals.as_interrupts(), pytest.raises(KeyboardInterrupt) as exc:
        entrypoints.load_group("g", keep)
    assert loaded == [1], "the other plugins load before the Ctrl-C ends the run"
    assert getattr(exc.value, "signum", signal.SIGINT) == signal.SIGINT
