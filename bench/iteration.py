"""One whole iteration of the default class visualization (fft + standard transforms + Adam, the
class-score graph) with its numpy side in numpy or on the step graphs, against the gradient
graph alone.

Rows, timed interleaved call by call in shuffled rounds (a shared machine drifts between fast and
slow spells; only ratios inside one run mean much), medians:

- ``graph``: the bundle's class-score gradient graph alone, on a fixed image;
- ``iter.numpy`` / ``iter.graph``: a whole iteration (draw, image, warp, graph, adjoints, Adam),
  the step's numpy side in numpy (:func:`ortviz.render.loop.optimize`'s step) or on the step graphs
  (:class:`ortviz.render.stepgraph.Stepper`: pre, the gradient graph, post);
- ``iter.fused``: the same as one session run, pre, the gradient graph and post merged into
  one model (:class:`ortviz.render.stepgraph.fused.FusedStepper`);
- ``side.numpy`` / ``side.graph``: the same without the gradient graph (a fixed gradient stands
  in for it): what the step's numpy side costs.

Runtime environment (stock onnxruntime):

    .venv/bin/python bench/iteration.py [--threads 2] [--rounds 30] [--warmup 10] [--out bench/results/iteration-2t.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import ortviz  # first: it limits numpy's BLAS to one thread before numpy loads
from ortviz.render import stepgraph, transforms as tf
from ortviz.render.context import Context
from ortviz.render.optim import Adam
from ortviz.render.stepgraph.fused import FusedStepper
from ortviz.techniques import recipes

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py: the machine record)

TARGET = 130   # flamingo


class NumpyRun:
    """The numpy loop's step (views 1, no regularizers), state kept between calls."""

    def __init__(self, ctx, param, ts, p):
        self.ctx, self.param, self.ts, self.p, self.opt = ctx, param, ts, p, Adam(0.05)
        self.img = param.image(p)

    def step(self, rng, objective) -> float:
        chain = tf.sample(self.ts, rng, self.img.shape[2:], self.ctx.size)
        value, g = objective(chain.forward(self.img))
        g_desc = -chain.adjoint(np.asarray(g, np.float32))
        self.p = self.param.project(self.p - self.opt.step(self.param.image_vjp(self.p, g_desc)))
        self.img = self.param.image(self.p)
        return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10, help="untimed calls of each row first")
    ap.add_argument("--provider", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    model = ortviz.load(provider=args.provider, threads=args.threads, step="graph")
    ctx = Context(model.engine, np.random.default_rng(0), 1, targets=[TARGET])
    grad = model.engine.gradient("class_score", "logits")
    w = ctx.one_hot()

    def objective(x):
        step = grad(x, class_weights=w)
        return step.loss, step.grad

    x0 = np.zeros((ctx.batch, 3, *ctx.size), np.float32)
    g_fixed = objective(x0)[1]
    fixed = lambda x: (0.0, g_fixed)                                   # noqa: E731
    param = recipes.parameterization(ctx, "fft", ctx.size)
    ts = recipes.transform_list(ctx, "standard")
    p0 = param.init(np.random.default_rng(1))
    runs = {"numpy": NumpyRun(ctx, param, ts, p0),
            "graph": stepgraph.Stepper(model.engine, param, ts, Adam(0.05), p0, ctx.size)}
    sides = {"numpy": NumpyRun(ctx, param, ts, p0),
             "graph": stepgraph.Stepper(model.engine, param, ts, Adam(0.05), p0, ctx.size)}
    fused = FusedStepper(model.engine, param, ts, Adam(0.05), p0, ctx.size,
                         graph=("class_score", "logits", {"class_weights": w}))
    rng = np.random.default_rng(2)
    rows = {"graph": lambda: objective(x0), "iter.fused": lambda: fused.step(rng)}
    for k in ("numpy", "graph"):
        rows[f"iter.{k}"] = lambda r=runs[k]: r.step(rng, objective)
        rows[f"side.{k}"] = lambda r=sides[k]: r.step(rng, fixed)
    calls = list(rows.values())
    times = common.interleaved(calls, args.rounds, args.warmup)
    med = {name: 1e3 * float(np.median(times[id(c)])) for name, c in rows.items()}
    machine = common.machine()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": machine["cpu"], "machine": machine,
              "provider": model.engine.provider, "threads": args.threads, "rounds": args.rounds,
              "warmup": args.warmup, "ms": {k: round(v, 2) for k, v in med.items()},
              "ratio_to_graph": {k: round(v / med["graph"], 3) for k, v in med.items()}}
    load = ", ".join(f"{v:.1f}" for v in machine["loadavg"] or [])
    print(f"{machine['cpu']}, {model.engine.provider}, {args.threads} threads, {args.rounds} "
          f"interleaved rounds, medians; load average {load}")
    print("| row | ms | / gradient graph |\n| --- | --- | --- |")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {v / med['graph']:.2f} |")
    common.save(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
