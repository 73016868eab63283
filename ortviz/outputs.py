"""Write a run's results: image, JSON sidecar, and optionally frames, a GIF and a contact sheet.

Every file is written to a temporary name and renamed into place (see ``images``), so a crash
never leaves a partial file; a Ctrl-C while they are written is held until all of them (image,
snapshots, sidecar) are in place, then raised as :class:`InterruptedAfterWrite`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import tempfile
import threading
from pathlib import Path

import numpy as np
import onnxruntime

from . import __version__, images
from .bundle import sha256
from .render import Result


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C arrived while a result was written; every file of it is complete (``written``)."""

    def __init__(self, written: list[Path]):
        super().__init__()
        self.written = written


@contextlib.contextmanager
def held_interrupts():
    """Hold SIGINT for the block; yields a list that holds the signal if one came."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got  # signals only reach the main thread
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed outside Python: leave it alone
        yield got
        return
    signal.signal(signal.SIGINT, lambda sig, frame: got.append(sig))
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


def _plain(value):
    """JSON has no NaN or Infinity: such floats are written as strings ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json(path: Path, value) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_plain(value), f, indent=1, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    }


def write_result(out: Path, result: Result, meta: dict) -> list[Path]:
    """Write the image, the snapshots if any, and the sidecar (last, so a sidecar always
    describes a complete set). Raises :class:`InterruptedAfterWrite` after writing if a Ctrl-C
    came meanwhile."""
    with held_interrupts() as got:
        written = _write_result(Path(out), result, meta)
    if got:
        raise InterruptedAfterWrite(written)
    return written


def _write_result(out: Path, result: Result, meta: dict) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    images.save_image(out, result.image)
    if result.frames:
        frames = result.frames + [result.image] if result.frames[-1].shape == result.image.shape else result.frames
        gif = out.with_suffix(".gif")
        images.save_gif(gif, [f for f in frames if f.shape == frames[-1].shape])
        sheet = out.with_name(out.stem + "-sheet.png")
        images.save_image(sheet, images.contact_sheet(frames))
        folder = out.with_name(out.stem + "-frames")
        folder.mkdir(exist_ok=True)
        for k, f in enumerate(frames):
            images.save_image(folder / f"{k:04d}.png", f)
        written += [gif, sheet, folder]
        meta = dict(meta, snapshots={"gif": gif.name, "sheet": sheet.name, "frames": folder.name,
                                     "count": len(frames)})
    side = out.with_suffix(out.suffix + ".json")
    write_json(side, meta)
    return written + [side]
