"""Write a run's results: image, JSON sidecar, and optionally frames, a GIF and a contact sheet.

Every file is written to a temporary name and renamed into place (see ``imaging``), so a crash
never leaves a partial file.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

from . import __version__, imaging
from .bundle import sha256
from .render import Result


def write_json(path: Path, value) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, indent=1)
            f.write("\n")
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
                  "manifest_sha256": sha256(bundle.root / "manifest.json")},
        "versions": {"ortviz": __version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "timing": {"seconds": round(result.seconds, 3), "iterations": result.iterations_done,
                   "iterations_per_second": round(result.iterations_done / max(result.seconds, 1e-9), 2)},
        "final_objective": result.history[-1] if result.history else None,
        "objective_first": result.history[0] if result.history else None,
        "top5": result.top5,
    }


def write_result(out: Path, result: Result, meta: dict) -> list[Path]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    imaging.save_image(out, result.image)
    if result.frames:
        frames = result.frames + [result.image] if result.frames[-1].shape == result.image.shape else result.frames
        gif = out.with_suffix(".gif")
        imaging.save_gif(gif, [f for f in frames if f.shape == frames[-1].shape])
        sheet = out.with_name(out.stem + "-sheet.png")
        imaging.save_image(sheet, imaging.contact_sheet(frames))
        folder = out.with_name(out.stem + "-frames")
        folder.mkdir(exist_ok=True)
        for k, f in enumerate(frames):
            imaging.save_image(folder / f"{k:04d}.png", f)
        written += [gif, sheet, folder]
        meta = dict(meta, snapshots={"gif": gif.name, "sheet": sheet.name, "frames": folder.name,
                                     "count": len(frames)})
    side = out.with_suffix(out.suffix + ".json")
    write_json(side, meta)
    return written + [side]
