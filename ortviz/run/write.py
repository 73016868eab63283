"""Write a run's results: image, JSON sidecar, and optionally frames, a GIF and a contact sheet.

The files are one output set (``outputset``): all are written to temporary names, then moved in
together, so a failure leaves the old set or the new one, never a mix; a Ctrl-C (or SIGTERM,
SIGHUP...) while they are written is held until all of them (image, snapshots, sidecar) are in
place, then raised as :class:`InterruptedAfterWrite`.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from pathlib import Path

import numpy as np
import onnxruntime

from ortviz import __version__
from ortviz._util import signals
from ortviz._util.atomic import atomic_write
from ortviz._util.signals import Interrupted
from ortviz.bundle.reader import sha256
from ortviz.render.context import Result
from ortviz.run import imagefiles, outputset
from ortviz.run.outputset import Files


class InterruptedAfterWrite(Interrupted):
    """A signal arrived while a result was written; every file of it is complete (``written``)."""

    def __init__(self, written: list[Path], signum: int):
        super().__init__(signum)
        self.written = written


def _plain(value):
    """JSON has no NaN or Infinity: such floats are written as strings ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def json_writer(value):
    """``write(text_file)`` for ``value`` as strict JSON (NaN and Infinity as strings)."""
    def write(f):
        json.dump(_plain(value), f, indent=1, allow_nan=False)
        f.write("\n")
    return write


def write_json(path: Path, value) -> None:
    atomic_write(Path(path), json_writer(value), text=True)


def sidecar(result: Result, technique: str, params: dict, run_info: dict, bundle) -> dict:
    return {
        "technique": technique,
        "status": result.status,
        "params": params,
        **run_info,
        "model": {"name": bundle.name, "bundle": str(bundle.root),
                  # the manifest as opened: the bundle may have been re-exported since
                  "manifest_sha256": getattr(bundle, "manifest_sha256", None)
                  or sha256(bundle.root / "manifest.json")},
        "versions": {"ortviz": __version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "timing": {"seconds": round(result.seconds, 3), "iterations": result.iterations_done,
                   "iterations_per_second": round(result.iterations_done / max(result.seconds, 1e-9), 2)},
        "final_objective": result.history[-1] if result.history else None,
        "objective_first": result.history[0] if result.history else None,
        "top5": result.top5,
        **result.meta,
    }


def write_result(out: Path, result: Result, meta: dict, claimed: bool = False) -> list[Path]:
    """Write the image, the snapshots if any, and the sidecar as one set (``outputset``: the
    old set stays whole if anything fails). ``claimed``: the caller already checked and locked
    the set. A signal that comes meanwhile is held until the set is in place, then raised as
    :class:`InterruptedAfterWrite`."""
    files = Files(Path(out), bool(result.frames), result.photo is not None)
    with signals.held() as got, contextlib.ExitStack() as stack:
        if not claimed:
            outputset.check([files])
            stack.enter_context(outputset.claim([files]))
        written = _write_set(files, result, meta)
    if got:
        raise InterruptedAfterWrite(written, got[0])
    return written


def snapshot_frames(result: Result) -> tuple[list[np.ndarray], list]:
    """The frames to write and the iteration of each (``"final"``: the result, added where
    its size is the last frame's)."""
    frames, labels = list(result.frames), list(result.frame_steps)
    if len(labels) != len(frames):  # a result made without them
        labels = [None] * len(frames)
    if frames[-1].shape == result.image.shape:
        frames.append(result.image)
        labels.append("final")
    return frames, labels


def _write_set(files: Files, result: Result, meta: dict) -> list[Path]:
    alpha = {} if result.alpha is None else {"alpha": result.alpha}  # RGBA only when there is one
    writers, frame_writers = {"image": imagefiles.image_writer(files.image, result.image, **alpha)}, []
    if result.frames:
        frames, labels = snapshot_frames(result)
        # every frame in the GIF: a smaller one (an earlier octave) brought up to the result's size
        writers["GIF"] = imagefiles.gif_writer(files.gif, imagefiles.same_size(frames, frames[-1].shape))
        writers["contact sheet"] = imagefiles.image_writer(files.sheet,
                                                       imagefiles.contact_sheet(frames, labels=labels))
        frame_writers = [imagefiles.image_writer(Path("f.png"), f) for f in frames]
        meta = dict(meta, snapshots={"gif": files.gif.name, "sheet": files.sheet.name,
                                     "frames": files.frames.name, "count": len(frames),
                                     "iterations": labels})
    if files.photo:
        writers["photo"] = imagefiles.image_writer(files.photo_path, result.photo)
        meta = dict(meta, photo=files.photo_path.name)
    written = outputset.replace(files, writers, frame_writers, json_writer(meta))
    return written
