"""Do feature inversions keep what the photo shows? Judged by other networks, and SSIM.

For each photo and layer (positions such as ``early`` resolve as feature inversion's own, see
``ortviz invert --help``), this reconstructs the photo from its features with ortviz's feature
inversion (its defaults unless ``--set``) and reports EfficientNet-Lite1's and -Lite2's top-1 on
the reconstruction against theirs on the photo as the inversion saw it (``--fit``'s 224x224
input, written beside every result), Lite0's own, SSIM (Wang et al. 2004, 7x7 Gaussian windows
on luma) to that photo, and seconds per picture. The photo is fitted with ``--fit crop``
unless ``--set fit=...`` says otherwise, so that the whole frame is photo: the default ``pad``
adds a grey border that a reconstruction matches easily, which would inflate SSIM. One run per recipe in ``--out`` (rows per
photo and layer); ``--table`` prints the table of docs/quality.md, the photos the recipe was tuned on
(``TUNED``) apart from the others. Export environment (torch and the judge packages, as
``bench/recognition.py``):

    .venv-export/bin/python bench/inversion.py --name defaults --out docs/inversion.json
    .venv-export/bin/python bench/inversion.py --set param=fft --name fft --out docs/inversion.json
    .venv-export/bin/python bench/inversion.py --table docs/inversion.json

Photos: the two shipped samples (chelsea and coffee, CC0: the recipe was tuned on them) and
``bench/photos`` (public-domain, CC0 and CC BY photos, see its README), or your own with
``--photos``. Rows of the ten photos ``debian_photos.py`` fetches (a second tuning set, not
shipped) are counted as tuned on too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from debian_photos import PHOTOS as DEBIAN_TUNING
from recognition import JUDGES, _save, judges  # torch is imported only by judges()

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)
from ortviz.render.metrics import ssim

HERE = Path(__file__).resolve().parent
SAMPLES = ("chelsea.png", "coffee.png")   # the shipped samples: the first tuning set
TUNING_2 = tuple(f"{name}.jpg" for name in DEBIAN_TUNING)
TUNED = SAMPLES + TUNING_2
PHOTOS = SAMPLES + tuple(sorted(p.name for p in (HERE / "photos").glob("*.jpg")))
LAYERS = ("early", "middle", "_blocks.2")


def top1(j, image: np.ndarray) -> int:
    import torch
    from PIL import Image
    net, size = j
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32)
    x = torch.from_numpy(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        return int(net(x)[0].argmax())


def _photo_path(name: str) -> Path:
    from ortviz.bundle.embedded import sample
    p = Path(name)
    if p.exists():
        return p
    return HERE / "photos" / name if (HERE / "photos" / name).exists() else Path(sample(name))


def _group(photo: str) -> str:
    """reported (never tuned on), tuned on (the shipped samples) or tuning set 2 (debian_photos)."""
    return "tuned on" if photo in SAMPLES else "tuning set 2" if photo in TUNING_2 else "reported"


def table(path: Path) -> str:
    out = ["| recipe | photos | layer | Lite1 keeps the photo's top-1 | Lite2 keeps it | Lite0 keeps it "
           "| mean SSIM | s / picture |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in json.loads(path.read_text())["runs"]:
        for group in ("reported", "tuned on", "tuning set 2"):
            for layer in r["layers"]:
                rows = [x for x in r["rows"] if x["layer"] == layer and _group(x["photo"]) == group]
                if not rows:
                    continue
                n = len(rows)
                keep = {j: f"{sum(x[j]['kept'] for x in rows)}/{n}" if j in rows[0] else "-"
                        for j in JUDGES + ("self",)}
                out.append(f"| {r['name']} | {group} ({n}) | {layer} "
                           f"({rows[0].get('resolved', layer)}) | {keep[JUDGES[0]]} | {keep[JUDGES[1]]} "
                           f"| {keep['self']} | {np.mean([x['ssim'] for x in rows]):.2f} "
                           f"| {np.mean([x['seconds'] for x in rows]):.1f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="technique parameter, k=v")
    ap.add_argument("--name", default=None)
    ap.add_argument("--layers", default=",".join(LAYERS), help="names or positions, comma-separated")
    ap.add_argument("--photos", default=",".join(PHOTOS),
                    help="file names (shipped samples, bench/photos) or paths, comma-separated")
    ap.add_argument("--threads", type=int, default=2, help="for ortviz and the judges")
    ap.add_argument("--no-judges", action="store_true",
                    help="Lite0 and SSIM only (no torch: screens recipes in the runtime environment)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--table", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    from ortviz.objective.positions import resolve_layer
    from ortviz.run import imagefiles
    from ortviz.techniques.registry import techniques

    tech = techniques()["feature-inversion"]
    params = {k: tech.param(k).type(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    name = args.name or (", ".join(f"{k}={v}" for k, v in params.items()) or "defaults")
    params = {"fit": "crop"} | params  # see the module: the whole frame is photo
    model = ortviz.load(provider="cpu", threads=args.threads)
    js = {} if args.no_judges else judges(args.threads)
    layers = args.layers.split(",")
    run = {"name": name, "date": time.strftime("%Y-%m-%d"), "params": tech.defaults() | params,
           "layers": layers, "rows": [], "complete": False}
    for photo in args.photos.split(","):
        rgb = imagefiles.load_image(_photo_path(photo))
        for layer in layers:
            t0 = time.perf_counter()
            pic = model.feature_inversion(rgb, layer=layer, seed=0, **params)
            seconds = time.perf_counter() - t0
            seen = pic.result.photo  # the photo as the inversion saw it (--fit)
            row = {"photo": Path(photo).name, "layer": layer, "resolved": pic.meta["layer"],
                   "seconds": round(seconds, 1), "ssim": round(ssim(seen, pic.image), 3),
                   "self": {"kept": pic.top5[0]["class"] == model.classify(seen)[0]["class"]}}
            for j in js:
                want, said = top1(js[j], seen), top1(js[j], pic.image)
                row[j] = {"kept": said == want, "photo": want, "said": said}
            if args.images:
                args.images.mkdir(parents=True, exist_ok=True)
                pic.save(args.images / f"{Path(photo).stem}-{resolve_layer(model.bundle.layers, layer, tech.positions)}.png")
            run["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            _save(args.out, run)
    run["complete"] = True
    _save(args.out, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
