"""Atlas throughput: images per hour on this machine with 1 and 2 local workers and with Ray,
and the projected wall time of a full atlas of the default model on 1, 10 and 100 machines.

    .venv/bin/python bench/atlas.py [--channels 4] [--classes 4] [--iterations 64] \
        [--runs local1,local2,ray] [--stand-in] [--json bench/results/atlas.json]

Each run builds a fresh atlas in a temporary directory: once with channels only (``--channels``
of ``_blocks.5`` and ``_blocks.10``) and once with classes only, so the two kinds get their own
rate (pictures / wall seconds * 3600, model loading and worker start included). The projection
takes the best run's rates: a full atlas is every channel of every layer of the bundle's layer
table plus 1000 classes (photo pictures left out: they depend on how many photos), and it splits
perfectly over machines (units are independent), so wall time on M machines = time on one / M.

``--stand-in`` registers the tests' stand-in channel technique where feature-visualization is
not installed (its step is a forward plus a feature-distance gradient, about one gradient step
more than a channel objective graph would need); the result records which one ran.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

import ortviz  # noqa: E402,F401  (before numpy: BLAS on one thread)

LAYERS = ["_blocks.5", "_blocks.10"]


def one(kind: str, run: str, args) -> dict:
    from ortviz.atlas import Options, Spec, build
    spec = Spec(layers=LAYERS, channels=str(args.channels) if kind == "channel" else "0",
                classes=str(args.classes) if kind == "class" else "0", dreams=False,
                inversions=False, iterations=args.iterations, seed=0)
    workers = 2 if run == "local2" else 1
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = build(Options(out=Path(tmp) / "site", spec=spec, examples=0, workers=workers,
                               executor="ray" if run == "ray" else "local",
                               threads=1 if run in ("local2", "ray") else 2, provider="cpu"),
                       stream=io.StringIO())
        wall = time.perf_counter() - t0
    if report.failures:
        raise SystemExit(f"{run} {kind}: {report.failures[0]}")
    return {"kind": kind, "run": run, "pictures": report.rendered, "seconds": round(wall, 1),
            "per_hour": round(report.rendered / wall * 3600, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=None,
                    help="iterations per picture (default: each technique's own)")
    ap.add_argument("--runs", default="local1,local2,ray")
    ap.add_argument("--stand-in", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from ortviz.techniques.registry import techniques
    technique = "feature-visualization"
    if technique not in techniques():
        if not args.stand_in:
            raise SystemExit("feature-visualization is not installed (--stand-in uses the tests' one)")
        sys.path.insert(0, str(ROOT / "tests" / "runtime"))
        from atlas_support import channel_technique
        technique += f" ({channel_technique()})"
    rows = [one(kind, run, args) for run in args.runs.split(",") for kind in ("channel", "class")]
    bundle = ortviz.load(threads=1).bundle
    channels = sum(int(l["shape"][1]) for l in bundle.layers)
    best = {k: max((r for r in rows if r["kind"] == k), key=lambda r: r["per_hour"]) for k in ("channel", "class")}
    hours = channels / best["channel"]["per_hour"] + 1000 / best["class"]["per_hour"]
    result = {"machine": machine(), "iterations": args.iterations or "technique defaults",
              "channel_technique": technique,
              "rows": rows, "full_atlas": {"channels": channels, "classes": 1000,
                                            "hours": {m: round(hours / m, 2) for m in (1, 10, 100)},
                                            "from": {k: f"{v['run']} {v['per_hour']}/h" for k, v in best.items()}}}
    for r in rows:
        print(f"{r['run']:7s} {r['kind']:8s} {r['pictures']:3d} pictures in {r['seconds']:6.1f}s"
              f" = {r['per_hour']:7.1f} per hour")
    print(f"full atlas: {channels} channels / {best['channel']['per_hour']}/h + 1000 classes / "
          f"{best['class']['per_hour']}/h = {hours:.1f} h on 1 machine, {hours / 10:.2f} h on 10, "
          f"{hours / 100:.3f} h on 100")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
