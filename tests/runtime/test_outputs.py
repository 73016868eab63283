"""Output sets (docs/reliability.md): every file a run writes is checked before the first
iteration, locked against a second run, and replaced whole — the old set or the new one, never a
mix, and no stale snapshots. Default bundle, tiny runs."""

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ortviz._util import locking
from ortviz.bundle.embedded import default_bundle, sample
from ortviz.objective import algebra as A
from ortviz.techniques.spec import Param, Technique, positive

from probes import invoke, one_error_line, probe, run_probe, saved, snapshot, subprocess_env, temp_files
from support import ARTIFACTS

DREAM = ["--iterations", 1, "--octaves", 1, "--max-side", 64, "--provider", "cpu", "--threads", 1]


def photo(folder: Path, name="in.png") -> Path:
    p = folder / name
    with Image.open(sample()) as im:
        im.convert("RGB").resize((64, 48)).save(p)
    return p


def counting(calls: list):
    """A probe that records that its run started (to show a refusal came before any work)."""
    def fault(ctx, x, t):
        calls.append(t)
        return x
    return probe(fault, good=1)


@pytest.mark.parametrize("member", ["image", "gif", "sheet", "frames"])
def test_an_output_that_is_the_input_is_refused_and_the_photo_kept(tmp_path, member):
    names = {"image": ("in.png", "in.png"), "gif": ("o.gif", "o.png"),
             "sheet": ("o-sheet.png", "o.png"), "frames": ("o-frames/0000.png", "o.png")}
    given, out = names[member]
    (tmp_path / "o-frames").mkdir()
    src = photo(tmp_path, given)
    before = src.read_bytes()
    r = invoke("dream", "--image", src, "-o", tmp_path / out, "--snapshot-every", 1, *DREAM)
    assert r.exit_code == 2 and "would replace the input" in one_error_line(r), r.output
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted({"o-frames", Path(given).name})


def test_an_output_inside_the_bundle_is_refused(tmp_path):
    b = tmp_path / "bundle"
    shutil.copytree(default_bundle(), b)  # a copy: never links to the repository's files
    before = sorted(p.name for p in b.iterdir())
    r = invoke("dream", "--model", b, "-o", b / "dream.png", *DREAM)
    assert r.exit_code == 2 and "inside the bundle" in one_error_line(r), r.output
    assert sorted(p.name for p in b.iterdir()) == before


def _unwritable_folder() -> Path:
    """A folder this process cannot write: a read-only one, or /proc where root can write
    everything (the container's root ignores permissions)."""
    if os.geteuid() == 0:
        return Path("/proc")
    d = Path(tempfile.mkdtemp())
    d.chmod(0o555)
    return d


def test_an_unwritable_or_unreachable_folder_is_refused_before_the_run(tmp_path):
    calls = []
    folder = _unwritable_folder()
    r = run_probe(counting(calls), "-o", folder / "ortviz-test.png")
    assert r.exit_code == 2 and "cannot write in" in one_error_line(r), r.output
    assert calls == [] and "wrote" not in r.output  # found before the first iteration
    (tmp_path / "file").write_text("x")
    r = run_probe(counting(calls), "-o", tmp_path / "file" / "sub" / "o.png")
    assert r.exit_code == 2 and "is not a directory" in one_error_line(r) and calls == []


@pytest.fixture
def read_only(tmp_path, monkeypatch) -> Path:
    """A folder on a "read-only file system", at the OS calls: root ignores permissions, so
    the kernel's answers for a read-only mount are given here: ``access(W_OK)`` is false and
    every create (open with O_CREAT, mkdir) fails with EROFS."""
    ro = tmp_path / "ro"
    ro.mkdir()
    inside = lambda p: os.path.abspath(os.fsdecode(p)).startswith(str(ro))  # noqa: E731
    real_access, real_open, real_mkdir = os.access, os.open, os.mkdir

    def access(p, mode, *a, **k):
        return False if mode & os.W_OK and inside(p) else real_access(p, mode, *a, **k)

    def open_(p, flags, *a, **k):
        if flags & os.O_CREAT and k.get("dir_fd") is None and inside(p):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))
        return real_open(p, flags, *a, **k)

    def mkdir(p, *a, **k):
        if inside(p):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(p))
        return real_mkdir(p, *a, **k)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return ro


ATLAS = ["--layers", "_blocks.1", "--channels", 1, "--classes", 0, "--no-dreams",
         "--no-inversions", "--examples", 0, "--iterations", 1, "--provider", "cpu", "--threads", 1]


@pytest.mark.parametrize("target", ["ro", "ro/new/site"])
def test_an_atlas_on_a_read_only_target_says_permission_denied_as_the_techniques_do(read_only, target):
    site = read_only.parent / target
    r = invoke("atlas", "-o", site, *ATLAS)
    line = one_error_line(r)
    assert r.exit_code == 2 and line == f"error: -o {site}: cannot write in {read_only} " \
        "(permission denied)", line
    r = invoke("dream", "-o", site / "d.png", *DREAM)  # the technique commands' line, for the same
    assert r.exit_code == 2 and one_error_line(r) == f"error: output {site / 'd.png'}: cannot " \
        f"write in {read_only} (permission denied)", r.output
    assert not list(read_only.iterdir())


def test_an_atlas_folder_that_cannot_be_made_is_one_line_before_any_work(tmp_path):
    folder = _unwritable_folder() / "ortviz-atlas-test"  # as root: /proc, where mkdir fails
    r = invoke("atlas", "-o", folder, *ATLAS)
    line = one_error_line(r)
    assert r.exit_code == 2 and str(folder) in line and ("cannot make it" in line or
                                                         "permission denied" in line), line
    assert "rendered" not in r.output and not os.path.lexists(folder)

@pytest.mark.parametrize("member", ["image", "sidecar"])
def test_a_name_too_long_once_the_temporary_suffix_is_added_is_refused_before_the_run(tmp_path, member):
    calls = []
    # the temporary name adds 14 bytes (".NAME.<8 hex>.tmp") to a name of at most 255
    stem = "x" * (245 if member == "image" else 240)
    stem = stem[:-len(".png")]
    r = run_probe(counting(calls), "-o", tmp_path / f"{stem}.png")
    line = one_error_line(r)
    assert r.exit_code == 2 and f"the {member}'s name is" in line and "temporary suffix" in line, line
    assert calls == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("member", ["o.png.json", "o.gif", "o-sheet.png"])
def test_a_directory_in_the_way_is_refused_before_the_run_and_the_old_set_kept(tmp_path, member):
    out = tmp_path / "o.png"
    assert run_probe(probe(), "-o", out).exit_code == 0
    (tmp_path / member).unlink(missing_ok=True)
    (tmp_path / member).mkdir()
    before = snapshot(tmp_path)
    calls = []
    r = run_probe(counting(calls), "-o", out, "--snapshot-every", 1, "--seed", 5)
    assert r.exit_code == 2 and "a directory is in the way" in one_error_line(r), r.output
    assert calls == [] and snapshot(tmp_path) == before


@pytest.mark.parametrize("member", ["o.gif", "o-sheet.png", "o.png.json"])
def test_side_files_ortviz_did_not_write_are_never_replaced(tmp_path, member):
    p = tmp_path / member
    p.write_bytes(b"the user's own file")
    r = run_probe(probe(), "-o", tmp_path / "o.png", "--snapshot-every", 1)
    assert r.exit_code == 2 and "would replace a file" in one_error_line(r), r.output
    assert p.read_bytes() == b"the user's own file" and not (tmp_path / "o.png").exists()


def test_a_frames_folder_holding_other_files_is_refused(tmp_path):
    (tmp_path / "o-frames").mkdir()
    (tmp_path / "o-frames" / "notes.txt").write_text("mine")
    r = run_probe(probe(), "-o", tmp_path / "o.png", "--snapshot-every", 1)
    assert r.exit_code == 2 and "holds files ortviz did not write (notes.txt)" in one_error_line(r)
    assert (tmp_path / "o-frames" / "notes.txt").read_text() == "mine"


def _old_set(tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "o.png"
    assert run_probe(probe(), "-o", out).exit_code == 0
    return out, snapshot(tmp_path)


def test_a_full_disk_while_the_set_is_written_leaves_the_old_set_whole(tmp_path, monkeypatch):
    out, before = _old_set(tmp_path)
    real = Image.Image.save

    def full_disk(self, fp, format=None, **kw):
        if format == "GIF":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, fp, format=format, **kw)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    r = run_probe(probe(good=3), "-o", out, "--snapshot-every", 1, "--seed", 3)
    assert r.exit_code == 1 and "No space left on device" in one_error_line(r), r.output
    assert snapshot(tmp_path) == before and not temp_files(tmp_path)


def test_a_failure_while_the_files_are_moved_in_puts_the_old_set_back(tmp_path, monkeypatch):
    out, before = _old_set(tmp_path)
    side = str(out) + ".json"
    failed = []
    for name in ("rename", "replace"):
        real = getattr(os, name)

        def fail_on_sidecar(src, dst, *a, _real=real, **k):
            if os.fspath(dst) == side and not failed and not os.fspath(src).endswith(".old"):
                failed.append(src)  # the new sidecar, once: putting the old one back works
                raise OSError(errno.EIO, "Input/output error", side)
            return _real(src, dst, *a, **k)

        monkeypatch.setattr(os, name, fail_on_sidecar)
    r = run_probe(probe(good=3), "-o", out, "--seed", 9)
    assert r.exit_code == 1 and "Input/output error" in one_error_line(r), r.output
    assert failed
    monkeypatch.undo()
    assert snapshot(tmp_path) == before and not temp_files(tmp_path)


def test_fewer_snapshots_leave_no_stale_frames(tmp_path):
    out = tmp_path / "o.png"
    assert run_probe(probe(good=4), "-o", out, "--snapshot-every", 1).exit_code == 0
    assert len(list((tmp_path / "o-frames").iterdir())) == 5  # four snapshots and the result
    assert run_probe(probe(good=4), "-o", out, "--snapshot-every", 2).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "o-frames").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    assert saved(out)[1]["snapshots"]["count"] == 3
    assert run_probe(probe(good=4), "-o", out).exit_code == 0  # no snapshots: the old ones go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png", "o.png.json"]
    assert "snapshots" not in saved(out)[1]


def test_nothing_stays_behind_a_run_that_kept_nothing(tmp_path):
    def nan(ctx, x, t):
        x = x.copy()
        x[0, 0, 0, 0] = np.nan
        ctx.report(t, 1.0, x)

    r = run_probe(probe(nan, good=0), "-o", tmp_path / "new" / "deeper" / "o.png")
    assert r.exit_code == 1 and "no good image to keep" in one_error_line(r)
    assert not list(tmp_path.iterdir())  # the folders it made are gone, and the lock with them
    assert run_probe(probe(), "-o", tmp_path / "o.png").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png", "o.png.json"]


def test_a_second_run_into_the_same_output_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "o.png"
    first = subprocess.Popen(
        [sys.executable, "-m", "ortviz", "dream", "--iterations", "100000", "--octaves", "1",
         "--max-side", "64", "--threads", "1", "--provider", "cpu", "-o", str(out)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        ready, _, _ = select.select([first.stderr], [], [], 120)
        assert ready and first.stderr.readline().startswith("deepdream on"), "the first run did not start"
        r = invoke("dream", "-o", out, "--seed", 1, *DREAM)
        line = one_error_line(r)
        assert r.exit_code == 2 and f"another run is writing it now (pid {first.pid})" in line, line
        time.sleep(1)
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 143, stderr
    pixels, meta = saved(out)
    assert meta["status"] == "interrupted" and meta["seed"] == 0  # the first run's, whole
    assert pixels.shape[:2] == (48, 64) or max(pixels.shape[:2]) == 64
    assert not temp_files(tmp_path)


# -- per-slot results: one objective per batch slot ------------------------------------------------

BATCH2 = ARTIFACTS / "small_resnet_batch2"
SLOTS = ["feature-viz", "--model", BATCH2, "--objective", "layer1:0; layer1:1", "--iterations", 1,
         "--param", "pixel", "--provider", "cpu", "--threads", 1]


def _two_slots() -> Technique:
    """A plugin that gives a result per batch slot without declaring ``results``."""
    def run(ctx, iterations):
        f = ctx.bind([A.channel("layer1", 0), A.channel("layer1", 1)])
        x = ctx.noise()
        ctx.report(0, f(x)[0], x)
        return x
    return Technique(name="probe", summary="two slots", needs=(), start="noise", run=run,
                     params=(Param("iterations", int, 1, "n", positive),))


@pytest.mark.parametrize("how", ["declared", "undeclared"])
def test_per_slot_files_are_checked_like_any_output(tmp_path, how):
    """``A; B`` writes o-0.png and o-1.png: a sidecar in the way that ortviz did not write is
    refused in one line (checked before the run where the technique declares its results)."""
    foreign = tmp_path / "o-1.png.json"
    foreign.write_text("my notes")
    out = tmp_path / "o.png"
    r = invoke(*SLOTS, "-o", out) if how == "declared" else \
        run_probe(_two_slots(), "--model", BATCH2, "-o", out)
    line = one_error_line(r)
    assert r.exit_code == 2 and f"output {foreign}: the sidecar would replace a file that is " \
        "not an ortviz sidecar" in line, line
    assert foreign.read_text() == "my notes" and not temp_files(tmp_path)
    if how == "declared":  # found before the first iteration
        assert sorted(p.name for p in tmp_path.iterdir()) == ["o-1.png.json"], r.output


def test_per_slot_files_are_locked_against_a_second_run(tmp_path):
    out = tmp_path / "o.png"
    with locking.claimed(tmp_path / ".o-1.png.lock"):  # another run writes o-1.png now
        r = invoke(*SLOTS, "-o", out)
    line = one_error_line(r)
    assert r.exit_code == 2 and f"output {tmp_path / 'o-1.png'}: another run is writing it now " \
        f"(pid {os.getpid()})" in line, line
    assert not list(tmp_path.iterdir())


def test_per_slot_files_are_planned_and_written_whole(tmp_path):
    out = tmp_path / "o.png"
    r = invoke(*SLOTS, "-o", out, "--snapshot-every", 1)
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"o-{k}{s}" for k in (0, 1)
                           for s in (".png", ".png.json", ".gif", "-sheet.png", "-frames")), names
    for k in (0, 1):
        _, meta = saved(tmp_path / f"o-{k}.png")
        assert meta["status"] == "complete" and meta["snapshots"]["gif"] == f"o-{k}.gif", meta
    assert not temp_files(tmp_path)
