"""What the numpy side of a render-loop step costs against the gradient graph it feeds.

One step of :func:`ortviz.render.loop.optimize` is: the parameterization's image, the transform
list's warp forward, the gradient graph, the warp's adjoint, the parameterization's adjoint
and the optimizer. This times the gradient graph alone (the default bundle's class-score
graph, 224x224) and everything else of a step, interleaved in rounds (this machine drifts
between fast and slow states, so only ratios inside one run mean much), and reports medians
and the ratio per parameterization x transform preset. Runtime environment:

    .venv/bin/python bench/numpy_side.py [--rounds 40] [--warmup 60] [--threads 2] [--out bench/results/numpy-side.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import ortviz  # first: it limits numpy's BLAS to one thread before numpy loads
from ortviz.render import param as P, transforms as tf
from ortviz.render.context import Context
from ortviz.render.optim import Adam, Normalized
from ortviz.techniques import recipes

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py: the machine record)

CONFIGS = [("pixel", "none"), ("pixel", "light"), ("fft", "none"), ("fft", "standard"),
           ("maco", "standard")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=60,
                    help="untimed rounds first: a run's first steps build the plans it reuses")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    model = ortviz.load(provider="cpu", threads=args.threads)
    ctx = Context(model.engine, np.random.default_rng(0), 1, targets=[130])
    grad = model.engine.gradient("class_score", "logits")
    w = ctx.one_hot()
    shape = (ctx.batch, 3, *ctx.size)
    setups = {}
    for name, preset in CONFIGS:
        par = P.Pixel(shape, ctx.low, ctx.high) if name == "pixel" else \
            P.make(name, shape, ctx.low, ctx.high)
        ts = recipes.transform_list(ctx, preset)
        opt = Normalized(0.1) if name == "pixel" else Adam(0.05)
        setups[(name, preset)] = [par, ts, opt, par.init(np.random.default_rng(1))]
    x0 = np.zeros(shape, np.float32)
    g_fixed = grad(x0, class_weights=w).grad
    times = {"graph": []} | {f"{n}+{t}": [] for n, t in CONFIGS}
    for r in range(args.warmup + args.rounds):
        t0 = time.perf_counter()
        grad(x0, class_weights=w)
        if r >= args.warmup:
            times["graph"].append(time.perf_counter() - t0)
        for (name, preset), s in setups.items():
            par, ts, opt, p = s
            t0 = time.perf_counter()
            img = par.image(p)
            warp = tf.sample(ts, ctx.rng, img.shape[2:], ctx.size)
            x = warp.forward(img)
            g = warp.adjoint(g_fixed)                   # the graph's output, as in a step
            p = par.project(p - opt.step(par.image_vjp(p, -g)))
            if r >= args.warmup:
                times[f"{name}+{preset}"].append(time.perf_counter() - t0)
            s[3] = p
            assert x.shape == shape
    med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    rows = [{"config": k, "numpy_ms": round(v, 2), "ratio_to_graph": round(v / med["graph"], 3)}
            for k, v in med.items() if k != "graph"]
    machine = common.machine()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": machine["cpu"], "machine": machine,
              "threads": args.threads,
              "numpy": np.__version__, "rounds": args.rounds, "warmup": args.warmup, "graph_ms": round(med["graph"], 2),
              "rows": rows}
    print(f"{result['cpu']}, {args.threads} threads, {args.rounds} interleaved rounds, medians")
    print(f"class-score gradient graph, 224x224: {med['graph']:.2f} ms")
    print("| parameterization + transforms | numpy side ms | / graph |\n| --- | --- | --- |")
    for r in rows:
        print(f"| {r['config']} | {r['numpy_ms']:.2f} | {100 * r['ratio_to_graph']:.0f} % |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
