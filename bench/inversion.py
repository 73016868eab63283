"""Do feature inversions keep what the photo shows? Judged by other networks, and SSIM.

For each photo (the two shipped samples) and an early, a middle and a late block of the
embedded EfficientNet-Lite0, this reconstructs the photo from its features with ortviz's
feature inversion (default parameters unless ``--set``), and reports EfficientNet-Lite1's and
-Lite2's top-1 on the reconstruction against theirs on the photo (the same 224x224 input the
inversion saw), and SSIM (Wang et al. 2004, 7x7 Gaussian windows on luma) to that photo. One
row per setting in ``--out``; ``--table`` prints the table of docs/quality.md. Export environment (torch
and the judge packages, as ``bench/recognition.py``):

    .venv-export/bin/python bench/inversion.py --set param=fft --out docs/inversion.json
    .venv-export/bin/python bench/inversion.py --table docs/inversion.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)
import numpy as np

from ortviz.metrics import ssim
from recognition import JUDGES, _save, judges

PHOTOS = ("chelsea.png", "coffee.png")
LAYERS = ("_blocks.2", "_blocks.8", "_blocks.14")


def top1(j, image: np.ndarray) -> int:
    import torch
    from PIL import Image
    net, size = j
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32)
    x = torch.from_numpy(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        return int(net(x)[0].argmax())


def table(path: Path) -> str:
    out = ["| settings | layer | Lite1 keeps the photo's top-1 | Lite2 keeps it | Lite0 keeps it | mean SSIM | s / image |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in json.loads(path.read_text())["runs"]:
        for layer in r["layers"]:
            rows = [x for x in r["rows"] if x["layer"] == layer]
            if not rows:
                continue
            n = len(rows)
            keep = {j: sum(x[j]["kept"] for x in rows) for j in JUDGES + ("self",)}
            out.append(f"| {r['name']} | {layer} | {keep[JUDGES[0]]}/{n} | {keep[JUDGES[1]]}/{n} | {keep['self']}/{n} "
                       f"| {np.mean([x['ssim'] for x in rows]):.2f} | {np.mean([x['seconds'] for x in rows]):.0f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="technique parameter, k=v")
    ap.add_argument("--name", default=None)
    ap.add_argument("--layers", default=",".join(LAYERS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--table", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    from ortviz import images, imaging
    from ortviz.defaults import sample
    from ortviz.plugins import techniques

    tech = techniques()["feature-inversion"]
    params = {k: tech.param(k).type(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    name = args.name or (", ".join(f"{k}={v}" for k, v in params.items()) or "defaults")
    model = ortviz.load(provider="cpu", threads=2)
    pre = model.bundle.manifest["preprocessing"]
    js = judges()
    layers = args.layers.split(",")
    run = {"name": name, "date": time.strftime("%Y-%m-%d"), "params": tech.defaults() | params,
           "layers": layers, "rows": [], "complete": False}
    for photo in PHOTOS:
        rgb = images.load_image(sample(photo))
        seen = imaging.from_model(imaging.to_model(rgb, pre["mean"], pre["std"], size=(224, 224)),
                                  pre["mean"], pre["std"])  # what the inversion matched
        want = {j: top1(js[j], seen) for j in JUDGES}
        want["self"] = model.classify(seen)[0]["class"]
        for layer in layers:
            t0 = time.perf_counter()
            pic = model.feature_inversion(rgb, layer=layer, seed=0, **params)
            row = {"photo": photo, "layer": layer, "seconds": round(time.perf_counter() - t0, 1),
                   "ssim": round(ssim(seen, pic.image), 3),
                   "self": {"kept": pic.top5[0]["class"] == want["self"]}}
            for j in JUDGES:
                said = top1(js[j], pic.image)
                row[j] = {"kept": said == want[j], "photo": want[j], "said": said}
            if args.images:
                args.images.mkdir(parents=True, exist_ok=True)
                pic.save(args.images / f"{Path(photo).stem}-{layer}.png")
            run["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            _save(args.out, run)
    run["complete"] = True
    _save(args.out, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
