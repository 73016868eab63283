"""Seconds per default class visualization, two parameterizations interleaved.

What a user waits for: the whole ``class_visualization`` call (512 iterations, standard
transforms), one picture per class and parameterization, the order of the pair alternating
class by class so that a slow spell of the machine falls on both; medians and the median of
the per-class ratios. Runtime environment:

    .venv/bin/python bench/classviz_time.py [--params natural,fft] [--classes 73,415,947,554,231] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import ortviz  # first: it limits numpy's BLAS to one thread before numpy loads

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py: the machine record)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="natural,fft")
    ap.add_argument("--classes", default="73,415,947,554,231")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    a, b = args.params.split(",")
    m = ortviz.load(provider="cpu", threads=args.threads)
    m.class_visualization(0, seed=0, iterations=20, progress=False)  # sessions made, caches warm
    t = {a: [], b: []}
    for k, cls in enumerate(int(c) for c in args.classes.split(",")):
        for p in ((a, b) if k % 2 == 0 else (b, a)):
            t0 = time.perf_counter()
            m.class_visualization(cls, seed=0, param=p, progress=False)
            t[p].append(time.perf_counter() - t0)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": common.machine(),
           "threads": args.threads, "classes": args.classes,
           "seconds": {p: [round(v, 2) for v in x] for p, x in t.items()},
           "median_s": {p: round(statistics.median(x), 1) for p, x in t.items()},
           f"median_ratio_{a}_over_{b}": round(statistics.median(x / y for x, y in zip(t[a], t[b])), 3)}
    print(json.dumps(out))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
