"""Does DeepDream gain from random transforms? Feature energy reached and structure kept.

For each shipped photo, layer and ``--transforms`` preset (none, light: the circular jitter 16,
standard: Lucid's pad/crop/scale/rotate), DeepDream runs with its other defaults (4 octaves x
20 iterations, longest side 512, pixel parameterization) for two seeds. Reported per preset:
the layer's feature energy (mean phi^2 / 2) of the *result*, measured the same way for every
preset — no transform, the image cut into a fixed grid of model-size tiles, the mean over the
tiles — as a multiple of the photo's own; SSIM (7x7 Gaussian windows on luma) of the result to
the photo at the result's size (how much of the photo's structure is kept); seconds per dream.
Equal iterations for all presets. Runtime environment, CPU, 2 threads:

    .venv/bin/python bench/dream.py --out bench/results/dream.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)
from ortviz.bundle.embedded import sample
from ortviz.render import modelspace
from ortviz.render.metrics import ssim

PHOTOS = ("chelsea.png", "coffee.png")
LAYERS = ("_blocks.10", "_blocks.15")
PRESETS = ("none", "light", "standard")
SEEDS = (0, 1)


def energy(model, x: np.ndarray, layer: str) -> float:
    """Mean over a fixed grid of model-size tiles of mean(phi^2)/2 (no randomness)."""
    size = tuple(model.engine.image_shape[2:])
    vals = []
    for top, left in modelspace.tile_origins(x.shape[2:], size):
        tile = np.ascontiguousarray(x[..., top:top + size[0], left:left + size[1]])
        phi = model.engine.features(tile.astype(np.float32), layer).astype(np.float64)
        vals.append(0.5 * float((phi ** 2).mean()))
    return float(np.mean(vals))


def table(rows: list) -> str:
    """The per-preset means of a run's rows as a Markdown table (also scripts/docs_tables.py's)."""
    out = ["| `--transforms` | energy gain (mean) | SSIM to the photo (mean) | s per dream |",
           "| --- | --- | --- | --- |"]
    for preset in PRESETS:
        sel = [r for r in rows if r["transforms"] == preset]
        if sel:
            out.append(f"| {preset} | ×{np.mean([r['energy_gain'] for r in sel]):.2f} | "
                       f"{np.mean([r['ssim'] for r in sel]):.3f} | {np.mean([r['seconds'] for r in sel]):.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=None, help="folder for the pictures")
    args = ap.parse_args()
    model = ortviz.load(provider="cpu", threads=2)
    rows = []
    for photo in PHOTOS:
        rgb = np.asarray(Image.open(sample(photo)).convert("RGB"))
        for layer in LAYERS:
            for preset in PRESETS:
                for seed in SEEDS:
                    t = time.perf_counter()
                    pic = model.deepdream(rgb, layer=layer, transforms=preset, seed=seed)
                    secs = time.perf_counter() - t
                    h, w = pic.image.shape[:2]
                    mean, std = model.bundle.manifest["preprocessing"]["mean"], model.bundle.manifest["preprocessing"]["std"]
                    start = modelspace.to_model(rgb, mean, std, size=(h, w), crop=True)
                    res = modelspace.to_model(pic.image, mean, std)
                    e0, e1 = energy(model, start, layer), energy(model, res, layer)
                    ref = modelspace.from_model(start, mean, std)
                    row = {"photo": photo, "layer": layer, "transforms": preset, "seed": seed,
                           "energy_gain": round(e1 / e0, 3), "ssim": round(ssim(pic.image, ref), 4),
                           "seconds": round(secs, 2)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.images:
                        args.images.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(pic.image).save(
                            args.images / f"{Path(photo).stem}-{layer}-{preset}-{seed}.png")
    print("\n" + table(rows))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
