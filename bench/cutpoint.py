"""The issue's suggested design, measured: one gradient graph per cut point l that takes W_k, A_k
for every layer k <= l (any sum over those layers in one run), against the per-layer
``features`` graphs ortviz ships (one run per layer read).

Step 1, export environment (builds the cut-point graphs from the default bundle's forward graph
with the same builder and lowering as the exporter; writes them to build/cutpoint/):

    .venv-export/bin/python bench/cutpoint.py build

Step 2, runtime environment (stock onnxruntime; interleaved timing, medians, per-round ratios):

    .venv/bin/python bench/cutpoint.py time [--rounds 30] [--threads 2]

Rows: a one-layer objective at l on the cut-point graph of l (every shallower W_k, A_k fed as
zeros) against the bundle's features graph of l; and a two-layer sum (l1 < l2) as one run of
the cut-point graph of l2 against two features-graph runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import common  # bench/common.py: interleaved timing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "build" / "cutpoint"
CUTS = ["_blocks.5", "_blocks.12"]


def build() -> None:
    import onnx

    from ortviz.bundle.embedded import default_bundle
    from ortviz.bundle.graphs import Objective
    from ortviz.bundle.reader import Bundle
    from ortviz.export.gradients import build as build_graph

    b = Bundle.open(default_bundle())
    forward = onnx.load(str(b.forward_path))  # weights loaded from weights.bin
    layers = b.layers
    OUT.mkdir(parents=True, exist_ok=True)
    for cut in CUTS:
        upto = layers[:[l["name"] for l in layers].index(cut) + 1]

        def builder(p, _tensor, _shape, upto=upto):
            total = None
            for k, l in enumerate(upto):
                w = p.input(f"w{k}", l["shape"])
                a = p.input(f"a{k}", l["shape"])
                phi = l["tensor"]
                quad = p.op("Mul", p.op("Mul", phi, phi), a)
                term = p.op("ReduceSum", p.op("Add", p.op("Mul", phi, w),
                                              p.op("Mul", quad, p.const(0.5))), keepdims=1)
                total = term if total is None else p.op("Add", total, term)
            return total

        obj = Objective("cut", "cut-point", "layer", builder)
        last = upto[-1]
        g = build_graph(forward, b.input["name"], obj, cut, last["tensor"], tuple(last["shape"]))
        onnx.save(g.lowered, str(OUT / f"cut.{cut}.onnx"))
        (OUT / f"cut.{cut}.json").write_text(json.dumps({"layers": [l["name"] for l in upto],
                                                         "inputs": g.inputs, "grad": g.grad}))
        print(f"built cut point {cut}: {len(upto)} layers, {len(g.inputs)} inputs")


def time_it(rounds: int, threads: int) -> None:
    import numpy as np
    import onnxruntime as ort

    import ortviz  # noqa: F401  (one BLAS thread)
    from ortviz.bundle.embedded import default_bundle
    from ortviz.engine.sessions import Engine
    from ortviz.objective import algebra as A

    engine = Engine(default_bundle(), provider="cpu", threads=threads)
    x = (0.5 * np.random.default_rng(0).standard_normal(engine.image_shape)).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    rows = []
    for cut, first in [("_blocks.5", "_blocks.2"), ("_blocks.12", "_blocks.9")]:
        meta = json.loads((OUT / f"cut.{cut}.json").read_text())
        sess = ort.InferenceSession(str(OUT / f"cut.{cut}.onnx"), so, providers=["CPUExecutionProvider"])
        feeds = {k: np.zeros(v, np.float32) for k, v in meta["inputs"].items()}
        kl = meta["layers"].index(cut)
        kf = meta["layers"].index(first)
        feeds[f"w{kl}"][0, 3] = 1.0 / np.prod(feeds[f"w{kl}"].shape[2:])
        one = dict(feeds)
        two = dict(feeds)
        two[f"w{kf}"] = np.zeros_like(feeds[f"w{kf}"])
        two[f"w{kf}"][0, 5] = 1.0 / np.prod(two[f"w{kf}"].shape[2:])
        names = ["loss", meta["grad"]]
        f1 = A.channel(cut, 3).bind(engine)
        f2 = (A.channel(first, 5) + A.channel(cut, 3)).bind(engine)
        rows.append((f"1 layer ({cut}:3): cut-point graph of {cut} vs features graph",
                     lambda one=one, sess=sess: sess.run(names, {"image": x, **one}), lambda f=f1: f(x)))
        rows.append((f"2 layers ({first}:5 + {cut}:3): 1 cut-point run vs 2 features runs",
                     lambda two=two, sess=sess: sess.run(names, {"image": x, **two}), lambda f=f2: f(x)))
        # the same values, as a check that the cut-point graph computes the objective
        got = sess.run(names, {"image": x, **two})
        want = f2(x)
        err = float(np.abs(got[1] - want[1]).max() / np.abs(want[1]).max())
        print(f"{cut}: cut-point vs features-graph sum, rel err {err:.2e}")
    times = common.interleaved([c for r in rows for c in r[1:]], rounds)
    print(f"| row ({threads} threads, {rounds} rounds) | cut-point ms | features ms | ratio cut/features |")
    print("|---|---|---|---|")
    for name, cut_call, feat_call in rows:
        tc, tf = times[id(cut_call)], times[id(feat_call)]
        print(f"| {name} | {1e3 * statistics.median(tc):.1f} | {1e3 * statistics.median(tf):.1f} | "
              f"{statistics.median([a / b for a, b in zip(tc, tf)]):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["build", "time"])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    build() if args.step == "build" else time_it(args.rounds, args.threads)


if __name__ == "__main__":
    main()
