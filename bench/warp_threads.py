"""Would a second thread speed up the numpy side of a step? (issue 25)

The gradient graph runs on onnxruntime's threads; between two runs the numpy side (spectrum,
colour, warp, their adjoints, Adam) runs on one, and the other core waits. This splits the
warp's three dearest pieces in two, one half on a worker thread, the same arithmetic in the
same order (so the results are bit-identical, which is checked), and times each against the
serial form, interleaved, medians (the default recipe's transforms: a rotation's four-tap
gather forward, its ``bincount`` scatter back, and the axis-aligned warp's matrix products):

- the gather, split by output pixels;
- the scatter, split by channels (two on this thread, one on the worker) and by destination
  pixels (a stable partition of the taps, so each sum keeps its order);
- the matrix products, split by channels.

    .venv/bin/python bench/warp_threads.py [--rounds 300] [--out bench/results/warp-threads.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)
from ortviz.render import transforms as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py: the machine record)


def pieces(pool, hw=(224, 224)):
    """(name, serial, split, input) for each piece, on a drawn map with a rotation."""
    rng = np.random.default_rng(0)
    while True:
        chain = tf.sample(tf.preset("standard", fill=0.0), rng, hw, hw)
        if len(chain.warps) == 2:
            break
    sep, rot = chain.warps[0].plan, chain.warps[1].plan
    n = hw[0] * hw[1]
    x = rng.random((1, 3, *hw)).astype(np.float32)
    flat, w = rot.idx.ravel(), rot.w.ravel()
    pix = np.tile(np.arange(n), 4)                      # the output pixel of each tap
    low = np.flatnonzero(flat < n // 2)                 # stable: each bin's sum keeps its order
    high = np.flatnonzero(flat >= n // 2)
    halves = [(flat[s] - lo, w[s], pix[s], lo, m) for s, lo, m in ((low, 0, n // 2), (high, n // 2, n - n // 2))]

    def gather(x):
        xf = x.reshape(-1, n)

        def part(a, b):
            y = np.take(xf, rot.idx[0, a:b], axis=1) * rot.w[0, a:b]
            for k in range(1, 4):
                y += np.take(xf, rot.idx[k, a:b], axis=1) * rot.w[k, a:b]
            return y
        f = pool.submit(part, n // 2, n)
        return np.concatenate([part(0, n // 2), f.result()], 1).reshape(x.shape)

    def scatter_channels(g):
        gf = g.reshape(-1, n)
        out = np.empty_like(gf)

        def part(rows):
            for r in rows:
                out[r] = np.bincount(flat, weights=(rot.w * gf[r]).ravel(), minlength=n)
        f = pool.submit(part, range(2, gf.shape[0]))
        part(range(min(2, gf.shape[0])))
        f.result()
        return out.reshape(g.shape)

    def scatter_pixels(g):
        gf = g.reshape(-1, n)
        out = np.empty_like(gf)

        def part(idx, wt, px, lo, m):
            for r in range(gf.shape[0]):
                out[r, lo:lo + m] = np.bincount(idx, weights=wt * gf[r][px], minlength=m)
        f = pool.submit(part, *halves[1])
        part(*halves[0])
        f.result()
        return out.reshape(g.shape)

    def matmuls(x):
        f = pool.submit(sep.forward, x[:, 2:])
        return np.concatenate([sep.forward(x[:, :2]), f.result()], 1)

    return [("rotation forward (gather), by output pixels", rot.forward, gather, x),
            ("rotation adjoint (bincount), by channels 2+1", rot.adjoint, scatter_channels, x),
            ("rotation adjoint (bincount), by destination pixels", rot.adjoint, scatter_pixels, x),
            ("axis-aligned forward (matrix products), by channels 2+1", sep.forward, matmuls, x)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    with ThreadPoolExecutor(1) as pool:
        for name, serial, split, x in pieces(pool):
            if not np.array_equal(serial(x), split(x)):
                raise SystemExit(f"{name}: the split form is not bit-identical")
            one, two = [], []
            for _ in range(args.rounds):                    # interleaved
                for f, into in ((serial, one), (split, two)):
                    t0 = time.perf_counter()
                    f(x)
                    into.append(time.perf_counter() - t0)
            a, b = statistics.median(one) * 1e3, statistics.median(two) * 1e3
            rows.append({"piece": name, "serial_ms": round(a, 3), "two_threads_ms": round(b, 3),
                         "speedup": round(a / b, 2)})
            print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({"machine": common.machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
                                        "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
