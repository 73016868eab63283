"""Seeded fuzz of what the bundle-and-image fuzz (``test_reliability.py``) does not reach: old
output sets in odd states under a new run, and generated plugin declarations and runs.
``ORTVIZ_FUZZ_SEED`` explores further; each failure names its seed and case."""

import json
import os
import random
import sys
import traceback
import types
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from ortviz._util import entrypoints
from ortviz.run import imagefiles
from ortviz.techniques import registry
from ortviz.techniques.spec import Param, positive

from probes import cli_for, probe, runner, saved, snapshot, temp_files

SEED = int(os.environ.get("ORTVIZ_FUZZ_SEED", 11))
SIDE_CASES = int(os.environ.get("ORTVIZ_FUZZ_SIDE_CASES", 16))
PLUGIN_CASES = int(os.environ.get("ORTVIZ_FUZZ_PLUGIN_CASES", 30))


def _clean(r, where):
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        where + "\n" + "".join(traceback.format_exception(r.exception)))
    assert "Traceback" not in r.output and "unexpected" not in r.output, f"{where}\n{r.output}"
    errors = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert (r.exit_code == 0) == (not errors) and len(errors) <= 1, f"{where}\n{r.output}"


def _old_set(case: Path, rng: random.Random) -> str:
    """An old output set at ``case/o.png`` with one thing odd about it; returns what."""
    rgb = np.full((8, 8, 3), 40, np.uint8)
    imagefiles.save_image(case / "o.png", rgb)
    snaps = rng.random() < 0.5
    meta = {"technique": "probe", "status": "complete"}
    if snaps:
        imagefiles.save_gif(case / "o.gif", [rgb, rgb])
        imagefiles.save_image(case / "o-sheet.png", rgb)
        (case / "o-frames").mkdir()
        for k in range(rng.randrange(1, 6)):
            imagefiles.save_image(case / "o-frames" / f"{k:04d}.png", rgb)
        meta["snapshots"] = {"gif": "o.gif", "sheet": "o-sheet.png", "frames": "o-frames", "count": 2}
    (case / "o.png.json").write_text(json.dumps(meta))
    (case / "keep.txt").write_text("the user's")
    odd = rng.choice(["garbage sidecar", "list sidecar", "odd snapshot names", "dir at gif",
                      "dir at sheet", "dir at sidecar", "fifo at gif", "link at image",
                      "loop at sheet", "foreign frame", "subdir in frames", "file at frames",
                      "user's gif", "fifo at sidecar", "nothing", "nothing"])
    sidecar = case / "o.png.json"
    if odd == "garbage sidecar":
        sidecar.write_bytes(bytes(rng.randrange(256) for _ in range(40)))
    elif odd == "list sidecar":
        sidecar.write_text("[1, 2]")
    elif odd == "odd snapshot names":
        sidecar.write_text(json.dumps({"technique": "x", "snapshots": {"gif": "keep.txt", "sheet": "../x",
                                                     "frames": "/", "count": "x"}}))
    elif odd.startswith("dir at") or odd.startswith("fifo at") or odd.startswith("loop at"):
        p = {"gif": case / "o.gif", "sheet": case / "o-sheet.png",
             "sidecar": sidecar}[odd.split()[-1]]  # a FIFO sidecar must not be read: it blocks
        p.unlink(missing_ok=True)
        if odd.startswith("dir"):
            p.mkdir()
            (p / "inside.txt").write_text("mine")
        elif odd.startswith("fifo"):
            os.mkfifo(p)
        else:
            p.symlink_to(p)
    elif odd == "user's gif":
        (case / "o.png.json").write_text(json.dumps({"technique": "probe"}))  # lists no snapshots
        imagefiles.save_gif(case / "o.gif", [rgb])
    elif odd == "link at image":
        (case / "o.png").unlink()
        (case / "target.png").write_bytes(b"not an image, the user's file")
        (case / "o.png").symlink_to(case / "target.png")
    elif odd in ("foreign frame", "subdir in frames", "file at frames"):
        if (case / "o-frames").exists():
            for f in (case / "o-frames").iterdir():
                f.unlink()
            (case / "o-frames").rmdir()
        if odd == "file at frames":
            (case / "o-frames").write_text("mine")
        else:
            (case / "o-frames").mkdir()
            (case / "o-frames" / ("notes.txt" if odd == "foreign frame" else "0000.png")).mkdir() \
                if odd == "subdir in frames" else (case / "o-frames" / "notes.txt").write_text("mine")
    return odd


def test_fuzzed_side_files_keep_a_whole_set(tmp_path):
    rng = random.Random(SEED)
    outcomes = {0: 0, 2: 0}
    for k in range(SIDE_CASES):
        case = tmp_path / f"c{k}"
        case.mkdir()
        odd = _old_set(case, rng)
        snaps = rng.random() < 0.5
        before = snapshot(case)
        where = f"seed {SEED} case {k}: old set with {odd}, new run {'with' if snaps else 'without'} snapshots"
        args = ["probe", "--provider", "cpu", "--threads", "1", "-o", str(case / "o.png")]
        r = runner.invoke(cli_for(probe(good=1)), args + (["--snapshot-every", "1"] if snaps else []))
        _clean(r, where)
        assert r.exit_code in outcomes, f"{where}: exit {r.exit_code}\n{r.output}"
        outcomes[r.exit_code] += 1
        assert not temp_files(case), where
        assert (case / "keep.txt").read_text() == "the user's", where
        if r.exit_code == 2:  # refused before the run: nothing changed
            assert snapshot(case) == before, where
            continue
        pixels, meta = saved(case / "o.png")
        assert meta["status"] == "complete" and pixels.shape == (224, 224, 3), where
        if snaps:
            count = meta["snapshots"]["count"]
            assert len(list((case / "o-frames").iterdir())) == count == 2, where
            with Image.open(case / "o.gif") as im:
                im.load()
        else:
            assert "snapshots" not in meta, where
        if odd == "link at image":  # the link was replaced, never what it pointed to
            assert (case / "target.png").read_bytes() == b"not an image, the user's file", where
    print(f"side-file fuzz: {SIDE_CASES} cases, exit codes {outcomes}")
    assert outcomes[0] and outcomes[2], outcomes  # both kinds were reached


def _bad_check(v):
    raise RuntimeError("check broke")


NAMES = ["n", "n", "lr", "seed", "output", "help", "class_", "1x", "", "_hidden", "with", "scale"]
TYPES = [int, float, str, bool, list, None]
DEFAULTS = [0, 1, -1, 2.5, float("nan"), "", "a", True, None, [1]]
CHECKS = [None, None, positive, _bad_check, lambda v: 5, lambda v: "is never right"]
RUNS = {
    "good": lambda ctx, x, t: x,
    "none": lambda ctx, x, t: None,
    "shape": lambda ctx, x, t: x[0],
    "nan": lambda ctx, x, t: x * np.nan,
    "raise": lambda ctx, x, t: 1 / 0,
    "exit": lambda ctx, x, t: sys.exit(0),
    "report": lambda ctx, x, t: ctx.report(t, [1], x),
    "big-t": lambda ctx, x, t: ctx.report(-3, 1.0, x),
}


def test_fuzzed_plugins_never_take_the_tool_down(tmp_path, monkeypatch):
    rng = random.Random(SEED)
    modules, eps, made = {}, [], {}
    for k in range(PLUGIN_CASES):
        params = tuple(Param(rng.choice(NAMES), rng.choice(TYPES), rng.choice(DEFAULTS), "h",
                             rng.choice(CHECKS)) for _ in range(rng.randrange(0, 3)))
        behaviour = rng.choice(sorted(RUNS))
        base = probe(RUNS[behaviour], good=rng.choice([0, 1, 1]), name=f"fz{k}",
                     start=rng.choice(["photo", "noise", "photo"]))
        tech = base.__class__(**{**base.__dict__, "params": params,
                                 "run": _with_params(base.run)})
        module = types.ModuleType(f"ortviz_fuzz_plugin_{k}")
        module.technique = tech if rng.random() < 0.9 else "not a technique"
        modules[module.__name__] = module
        name = tech.name if rng.random() < 0.9 else f"fz{k - 1}"  # a clash, or a mismatch
        eps.append(metadata.EntryPoint(name=name, value=f"{module.__name__}:technique",
                                       group=registry.GROUP))
        made[name] = (params, behaviour)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    real = metadata.entry_points
    monkeypatch.setattr(entrypoints.metadata, "entry_points",
                        lambda **kw: list(real(**kw)) + (eps if kw.get("group") == registry.GROUP else []))
    found = registry.discover()  # never raises, whatever the declarations
    loaded = {p.name: p.technique for p in found if p.technique is not None and p.name.startswith("fz")}
    skipped = [p for p in found if p.technique is None]
    assert all(p.error and "\n" not in p.error for p in skipped)
    assert {"deepdream", "feature-inversion", "class-visualization"} <= {p.name for p in found if p.technique}
    ran = 0
    for name, tech in sorted(loaded.items()):
        out = tmp_path / f"{name}.png"
        where = f"seed {SEED} plugin {name}: {made.get(name)}"
        r = runner.invoke(cli_for(tech), ["probe", "--provider", "cpu", "--threads", "1",
                                          "-o", str(out)])
        _clean(r, where)
        ran += 1
        assert r.exit_code in (0, 1, 2), f"{where}: exit {r.exit_code}\n{r.output}"
        if out.exists():
            status = saved(out)[1]["status"]
            assert (status == "complete") == (r.exit_code == 0) and \
                (r.exit_code == 0 or status.startswith("stopped:")), f"{where}: {status}"
        assert not temp_files(tmp_path), where
    print(f"plugin fuzz: {PLUGIN_CASES} declarations, {len(loaded)} loaded and run, {len(skipped)} skipped")
    assert ran and skipped, (ran, len(skipped))


def _with_params(run):
    def wrapped(ctx, **params):
        return run(ctx, iterations=params.get("iterations", 1))
    return wrapped
