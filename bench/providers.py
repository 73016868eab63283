"""OpenVINO EP against the CPU EP, as ortviz runs them: graphs and whole iterations, interleaved.

Run in the OpenVINO environment (its onnxruntime has both providers):

    .venv-openvino/bin/python bench/providers.py [--rounds 30] [--threads 2] [--out FILE]

Two engines on the default bundle, ``--provider cpu`` and ``--provider openvino``, with ortviz's
own session options (no spin-waiting, ``--threads`` also given to OpenVINO). Rows:

- *graph*: one call of a graph's session (forward; the class-score graph at the logits;
  the features graphs at ``_blocks.5`` and ``_blocks.10``, which inversion and DeepDream run);
- *iteration*: each technique at its defaults at the model's size (DeepDream one octave, longest
  side 224), ``--iters`` iterations per call through the Python API, per iteration; that is
  what ``--provider auto`` decides between.

Each round calls every (row, provider) once in a shuffled order after warm-up; reported: the
median and min-max per provider and the median of the per-round ratios OpenVINO / CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import ortviz  # noqa: E402
from ortviz.bundle.embedded import sample  # noqa: E402

GRAPHS = [("forward", None), ("class_score", "logits"), ("features", "_blocks.5"),
          ("features", "_blocks.10")]
TECHNIQUES = {"class-viz": ("class-visualization", {}),
              "invert": ("feature-inversion", {}),
              "dream": ("deepdream", {"octaves": 1, "max_side": common.SIZE})}


def graph_call(model, objective, layer, rng):
    b = model.bundle
    if objective == "forward":
        sess = model.engine.session(b.manifest["forward"]["file"])
        feeds = {b.input["name"]: rng.standard_normal(b.input["shape"]).astype(np.float32)}
    else:
        entry = b.graph(objective, layer)
        sess = model.engine.session(entry.file)
        feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in entry.inputs.items()}
    return lambda: sess.run(None, feeds)


def technique_call(model, name, params, iters):
    tech, defaults = TECHNIQUES[name]
    photo = None if tech == "class-visualization" else sample(common.PHOTO)

    def call():
        r = model.run(tech, image=photo, iterations=iters, **defaults, **params)
        return r.result.seconds / iters
    return call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=8, help="iterations per technique call")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    models = {p: ortviz.load(provider=p, threads=args.threads) for p in ("cpu", "openvino")}
    rng = np.random.default_rng(0)
    rows = [(f"graph: {o}" + (f" @ {l}" if l else ""), {p: graph_call(m, o, l, rng) for p, m in models.items()}, False)
            for o, l in GRAPHS]
    rows += [(f"iteration: {t}", {p: technique_call(m, t, {}, args.iters) for p, m in models.items()}, True)
             for t in TECHNIQUES]
    calls = [(label, p, f, per_iter) for label, fs, per_iter in rows for p, f in fs.items()]
    for _, _, f, _ in calls:  # warm-up: sessions made and compiled, caches filled
        f(), f()
    times = {(label, p): [] for label, p, _, _ in calls}
    for rnd in range(args.rounds):
        order = list(calls)
        random.Random(rnd).shuffle(order)
        for label, p, f, per_iter in order:
            t = time.perf_counter()
            got = f()
            times[(label, p)].append(1e3 * (got if per_iter else time.perf_counter() - t))
        print(f"\rround {rnd + 1}/{args.rounds}", end="", file=sys.stderr)
    print(file=sys.stderr)
    out = []
    for label, _, _ in rows:
        c, o = times[(label, "cpu")], times[(label, "openvino")]
        row = {"row": label, "cpu_ms": round(statistics.median(c), 2),
               "openvino_ms": round(statistics.median(o), 2),
               "cpu_range_ms": [round(min(c), 2), round(max(c), 2)],
               "openvino_range_ms": [round(min(o), 2), round(max(o), 2)],
               "ratio_openvino_over_cpu": round(statistics.median(a / b for a, b in zip(o, c)), 3)}
        out.append(row)
        print(f"{label:<34} cpu {row['cpu_ms']:7.2f} ms  openvino {row['openvino_ms']:7.2f} ms"
              f"  ratio {row['ratio_openvino_over_cpu']:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"rounds": args.rounds, "threads": args.threads,
                                        "iters": args.iters, "onnxruntime": ort.__version__,
                                        "machine": common.machine(), "rows": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
