"""Do feature inversions keep what the photo shows? Judged by other networks, and SSIM.

For each photo and layer (positions such as ``early`` resolve as feature inversion's own, see
``ortviz invert --help``), this reconstructs the photo from its features with ortviz's feature
inversion (its defaults unless ``--set``) and reports EfficientNet-Lite1's and -Lite2's top-1 on
the reconstruction against theirs on the photo as the inversion saw it (``--fit``'s 224x224
input, written beside every result), Lite0's own, SSIM (Wang et al. 2004, 7x7 Gaussian windows
on luma) to that photo, its tonal range (pixel standard deviation over the photo's), and seconds
per picture. The photo is fitted with ``--fit crop`` unless ``--set fit=...`` says otherwise, so
that the whole frame is photo: the default ``pad`` adds a grey border that a reconstruction
matches easily, which would inflate SSIM. One run per recipe in ``--out`` (rows per photo, layer
and seed); ``--table`` prints the table of docs/quality.md, the photos the recipe was tuned on
(``TUNED``) apart from the others. Export environment (torch and the judge packages, as
``bench/recognition.py``):

    .venv-export/bin/python bench/inversion.py --name defaults --out docs/inversion.json
    .venv-export/bin/python bench/inversion.py --set param=fft --name fft --out docs/inversion.json
    .venv-export/bin/python bench/inversion.py --table docs/inversion.json

``--seeds 0,1,2`` inverts each photo once per seed: a rate's spread. ``--squash clip`` (screening
only) squashes the spectra with a clip instead of ortviz's sigmoid.

``--control blur:1`` (or ``jpeg:50``, ``down:2``) judges no inversion but the photo itself, lightly
degraded (a Gaussian blur of that many pixels, JPEG at that quality, down- and up-sampled by
that factor): how often the judges' top-1 survives a change far smaller than a reconstruction's,
a yardstick to read a "keeps the top-1" rate against.

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
from ortviz.render.modelspace import fit_photo

HERE = Path(__file__).resolve().parent
SAMPLES = ("chelsea.png", "coffee.png")   # the shipped samples: the first tuning set
TUNING_2 = tuple(f"{name}.jpg" for name in DEBIAN_TUNING)
TUNED = SAMPLES + TUNING_2
PHOTOS = SAMPLES + tuple(sorted(p.name for p in (HERE / "photos").glob("*.jpg")))
LAYERS = ("early", "middle", "_blocks.2")


def probabilities(j, image: np.ndarray) -> np.ndarray:
    """A judge's softmax over the 1,000 classes for ``image`` (resized to its input)."""
    import torch
    from PIL import Image
    net, size = j
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32)
    x = torch.from_numpy(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        return torch.softmax(net(x)[0].double(), 0).numpy()


CONTROLS = {"blur": "Gaussian blur, sigma {v:g} px", "jpeg": "JPEG quality {v:g}",
            "down": "down- and up-sampled by {v:g}"}


def degrade(rgb: np.ndarray, kind: str, v: float) -> np.ndarray:
    """The photo (HxWx3 uint8) after ``--control``'s change, e.g. ``("blur", 1.0)``."""
    import io

    from PIL import Image, ImageFilter
    im = Image.fromarray(rgb)
    if kind == "blur":
        im = im.filter(ImageFilter.GaussianBlur(v))
    elif kind == "jpeg":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(v))
        im = Image.open(buf)
    else:
        h, w = rgb.shape[:2]
        im = im.resize((round(w / v), round(h / v)), Image.BILINEAR).resize((w, h), Image.BICUBIC)
    return np.asarray(im.convert("RGB"))


def _control(text: str) -> tuple[str, float]:
    """``--control``'s ``KIND:VALUE``, parsed (argparse's type)."""
    kind, _, value = text.partition(":")
    try:
        v = float(value)
        ok = kind in CONTROLS and v > 0 and (kind != "jpeg" or v <= 100)
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            f"--control must be one of {', '.join(CONTROLS)}, a colon and a positive number "
            f"(blur:1, jpeg:50 up to 100, down:2), got {text!r}")
    return kind, v


def _seeds(text: str) -> tuple[int, ...]:
    """``--seeds``' ``0,1,2``, parsed (argparse's type)."""
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError("--seeds must be distinct non-negative integers, "
                                         f"comma-separated (0,1,2), got {text!r}")
    return seeds


def _photo_path(name: str) -> Path:
    from ortviz.bundle.embedded import sample
    p = Path(name)
    if p.exists():
        return p
    return HERE / "photos" / name if (HERE / "photos" / name).exists() else Path(sample(name))


def _group(photo: str) -> str:
    """reported (never tuned on), tuned on (the shipped samples) or tuning set 2 (debian_photos)."""
    return "tuned on" if photo in SAMPLES else "tuning set 2" if photo in TUNING_2 else "reported"


def _p(rows: list, j: str) -> str:
    """A judge's mean probability of the photo's top-1 on the pictures (and on the photos), where
    the rows record it (since 2026-12-06)."""
    if j not in rows[0] or "p" not in rows[0][j]:
        return "-"
    return f"{np.mean([x[j]['p'] for x in rows]):.2f} ({np.mean([x[j]['p_photo'] for x in rows]):.2f})"


def _range(rows: list) -> str:
    """The pictures' mean tonal range (pixel standard deviation over the photo's; 1: the photo's),
    where the rows record it (since 2026-12-07)."""
    return f"{np.mean([x['range'] for x in rows]):.2f}" if "range" in rows[0] else "-"


def table(path: Path) -> str:
    out = ["| recipe | photos | layer | Lite1 keeps the photo's top-1 | Lite2 keeps it | Lite0 keeps it "
           "| Lite1's mean p (on the photos) | mean SSIM | tonal range | s / picture |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in json.loads(path.read_text())["runs"]:
        for group in ("reported", "tuned on", "tuning set 2"):
            for layer in r["layers"]:
                rows = [x for x in r["rows"] if x["layer"] == layer and _group(x["photo"]) == group]
                if not rows:
                    continue
                n, seeds = len(rows), len({x.get("seed", 0) for x in rows})
                photos = f"{len({x['photo'] for x in rows})} x {seeds} seeds" if seeds > 1 else f"{n}"
                keep = {j: f"{sum(x[j]['kept'] for x in rows)}/{n}" if j in rows[0] else "-"
                        for j in JUDGES + ("self",)}
                out.append(f"| {r['name']} | {group} ({photos}) | {layer} "
                           f"({rows[0].get('resolved', layer)}) | {keep[JUDGES[0]]} | {keep[JUDGES[1]]} "
                           f"| {keep['self']} | {_p(rows, JUDGES[0])} "
                           f"| {np.mean([x['ssim'] for x in rows]):.2f} | {_range(rows)} "
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
    ap.add_argument("--seeds", type=_seeds, default=(0,),
                    help="comma-separated; each photo is inverted once per seed (default 0)")
    ap.add_argument("--no-judges", action="store_true",
                    help="Lite0 and SSIM only (no torch: screens recipes in the runtime environment)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--table", type=Path, default=None)
    ap.add_argument("--squash", choices=("sigmoid", "clip"), default="sigmoid",
                    help="screening only: what brings the spectra (fft, natural) into the colour range "
                         "(ortviz's is the sigmoid; clip: ortviz.render.param.Colour's other squash)")
    ap.add_argument("--control", type=_control, default=None,
                    help="judge the photo itself degraded (blur:SIGMA, jpeg:QUALITY, down:FACTOR), "
                         "no inversion")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    from ortviz.objective.positions import resolve_layer
    from ortviz.run import imagefiles
    from ortviz.techniques.registry import techniques

    tech = techniques()["feature-inversion"]
    if args.squash != "sigmoid":
        import functools

        from ortviz.techniques import recipes  # this process screens only: every spectrum so squashed
        make = recipes.parameterizations.make
        recipes.parameterizations.make = functools.partial(make, squash=args.squash)
    params = {k: tech.param(k).type(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    name = args.name or (", ".join(f"{k}={v}" for k, v in params.items()) or "defaults")
    params = {"fit": "crop"} | params  # see the module: the whole frame is photo
    model = ortviz.load(provider="cpu", threads=args.threads)
    js = {} if args.no_judges else judges(args.threads)
    layers = args.layers.split(",")
    if args.control:
        kind, value = args.control
        name = args.name or "control: the photo, " + CONTROLS[kind].format(v=value)
        layers = ["photo"]
    seeds = (0,) if args.control else args.seeds  # a control has no randomness
    run = {"name": name, "date": time.strftime("%Y-%m-%d"), "params": tech.defaults() | params,
           "layers": layers, "seeds": list(seeds), "squash": args.squash, "rows": [], "complete": False}
    for photo in args.photos.split(","):
        rgb = imagefiles.load_image(_photo_path(photo))
        ref = None  # the photo as --fit made it, judged once: the same for every layer and seed
        for layer, seed in ((layer, seed) for layer in layers for seed in seeds):
            t0 = time.perf_counter()
            if args.control:
                seen = fit_photo(rgb, model.engine.image_shape[2:], params["fit"])
                image, resolved = degrade(seen, *args.control), "-"
                own = model.classify(image)[0]["class"]
            else:
                pic = model.feature_inversion(rgb, layer=layer, seed=seed, **params)
                # seen: the photo as --fit made it
                seen, image, resolved = pic.result.photo, pic.image, pic.meta["layer"]
                own = pic.top5[0]["class"]
            seconds = time.perf_counter() - t0
            if ref is None:
                ref = model.classify(seen)[0]["class"], {j: probabilities(js[j], seen) for j in js}
            # range: the picture's pixel standard deviation over the photo's (its tonal range)
            row = {"photo": Path(photo).name, "layer": layer, "seed": seed, "resolved": resolved,
                   "seconds": round(seconds, 1), "ssim": round(ssim(seen, image), 3),
                   "range": round(float(image.std() / (seen.std() or 1.0)), 3),
                   "self": {"kept": own == ref[0]}}
            for j in js:
                p_seen, p_pic = ref[1][j], probabilities(js[j], image)
                want, said = int(p_seen.argmax()), int(p_pic.argmax())
                # p: the judge's probability of the photo's top-1, on the photo and on the picture
                # (a graded measure beside kept, for screening recipes on few photos)
                row[j] = {"kept": said == want, "photo": want, "said": said,
                          "p_photo": round(float(p_seen[want]), 3), "p": round(float(p_pic[want]), 3)}
            if args.images and not args.control:
                args.images.mkdir(parents=True, exist_ok=True)
                where = resolve_layer(model.bundle.layers, layer, tech.positions)
                pic.save(args.images / f"{Path(photo).stem}-{where}{f'-seed{seed}' if seed else ''}.png")
            run["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            _save(args.out, run)
    run["complete"] = True
    _save(args.out, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
