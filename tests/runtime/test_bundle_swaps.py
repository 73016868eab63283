"""Readers while a bundle is replaced, and the export lock (docs/reliability.md); split from
``test_reliability.py``.
"""

import json
import shutil
import threading
import time
import traceback

import numpy as np
import pytest
from test_reliability import small_copy

from ortviz._util import locking
from ortviz.bundle.reader import Bundle, BundleError
from ortviz.engine.sessions import Engine
from ortviz.export import writer

from support import ARTIFACTS

# -- readers while the bundle is replaced ------------------------------------------------------

@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "rename-aside"])
def test_readers_get_a_whole_bundle_or_a_clean_error_while_it_is_replaced(tmp_path, monkeypatch,
                                                                           atomic):
    if not atomic:
        monkeypatch.setattr(locking, "exchange", lambda a, b: False)
    out = tmp_path / "bundle"
    sources = [ARTIFACTS / "small_resnet_torchscript", ARTIFACTS / "small_resnet_dynamo"]
    shutil.copytree(sources[0], out)
    stop = threading.Event()
    failures, errors, successes, swaps = [], [], [], []
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    want = {str(s): Engine(s, provider="cpu").logits(x) for s in sources}
    names = {json.loads((s / "manifest.json").read_text())["model"]["name"]: str(s) for s in sources}

    def write():
        k = 0
        while not stop.is_set():
            k += 1
            tmp = tmp_path / f".bundle.tmp-{k}"
            shutil.copytree(sources[k % 2], tmp)  # the two exports differ in every file
            writer.swap_into_place(tmp, out, force=True)
            swaps.append(k)
            time.sleep(0.15)  # an export takes seconds; readers need a chance to finish

    def read():
        while not stop.is_set():
            try:
                engine = Engine(Bundle.open(out), provider="cpu")
                logits = engine.logits(x)
                g = engine.gradient("feature_energy", "layer2")(x)
                assert np.isfinite(g.loss)
                # never a mix of two exports: the logits are those of the bundle that was opened
                assert np.allclose(logits, want[names[engine.bundle.name]], atol=1e-5)
                successes.append(1)
            except BundleError as exc:
                errors.append(str(exc))
            except BaseException as exc:  # noqa: BLE001 - the test's point
                failures.append("".join(traceback.format_exception(exc)))

    threads = [threading.Thread(target=write), threading.Thread(target=read),
               threading.Thread(target=read)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and not failures and (len(swaps) < 15 or len(successes) < 15):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    print(f"{len(swaps)} swaps, {len(successes)} good reads, {len(errors)} clean errors",
          sorted({e.split(":")[0][:60] for e in errors}))
    assert not failures, failures[0]
    assert successes and len(swaps) >= 5, (len(successes), len(swaps), errors[:3])
    assert all("\n" not in e for e in errors)
    Bundle.open(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # the lock file is removed


def test_the_swap_waits_for_the_lock(tmp_path):
    out = small_copy(tmp_path, "b")
    tmp = small_copy(tmp_path, ".b.tmp-1")
    done = threading.Event()

    def swap():
        writer.swap_into_place(tmp, out, force=True)
        done.set()

    with locking.exclusive(locking.lock_path(out)):  # another export is swapping
        t = threading.Thread(target=swap)
        t.start()
        assert not done.wait(0.5), "swapped while another process held the lock"
    t.join(30)
    assert done.is_set() and not tmp.exists()
    Bundle.open(out)


def test_replacing_refuses_what_is_not_a_bundle(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an ortviz bundle"):
        writer.check_replaceable(home, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a bundle directory"):
        writer.check_replaceable(tmp_path / "file", force=True)
    with pytest.raises(FileExistsError, match="pass --force"):
        writer.check_replaceable(home, force=False)
    tmp = small_copy(tmp_path, ".home.tmp-x")
    with pytest.raises(FileExistsError):
        writer.swap_into_place(tmp, home, force=True)
    assert (home / "notes.txt").read_text() == "mine"
