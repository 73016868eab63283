"""Does channel visualization work at every layer? The share of sampled channels that rise.

    python bench/units.py [--per-layer 4] [--iterations 64] [--seed 0] [--threads 2] [--out FILE]
    python bench/units.py --units "_swish_1:0-31;_swish:0-31;_avg_pooling:3" --iterations 16

Draws ``--per-layer`` channels at random (numpy ``default_rng(seed)``, without replacement) from
every layer of the embedded EfficientNet-Lite0's layer table (21 layers: 84 channels at the
default), or of ``--model``'s, and makes each one's feature visualization through the Python
API at the technique's defaults except ``--iterations`` (fft + standard transforms, seed 0). A channel **rises** when
its objective's last value is above its first, and is **not blank** when the picture's pixel
standard deviation is above 8 (the mid-grey start is about 3) and its status is not ``blank``.
Layers whose units can be dead (a ReLU-like layer with its pre-activation in the bundle:
``_swish``, ``_swish_1``, ``_avg_pooling``) also run with ``warm_up=False``, the recipe before
the warm-up; on every other layer the warm-up never acts, so the two are the same run.
``--units`` runs the channels named instead of a random draw (issue 21 named these: 24 of the
first 32 ``_swish_1`` channels, 6 of ``_swish``'s and ``_avg_pooling:3`` stayed flat grey).
Writes ``bench/results/units-DATE.json`` (every channel's numbers, the machine) and prints the
shares.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

FLAT_STD = 8.0


def sample(bundle, per_layer: int, seed: int) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for layer in bundle.layers:
        c = int(layer["shape"][1])
        out += [(layer["name"], int(n)) for n in sorted(rng.choice(c, min(per_layer, c), replace=False))]
    return out


def named(text: str) -> list[tuple[str, int]]:
    """``LAYER:A-B;LAYER:C`` -> [(layer, channel), ...]."""
    out = []
    for part in text.split(";"):
        layer, _, chans = part.strip().rpartition(":")
        a, _, b = chans.partition("-")
        out += [(layer, c) for c in range(int(a), int(b or a) + 1)]
    return out


def one(model, layer: str, channel: int, iterations: int, warm_up: bool) -> dict:
    t0 = time.perf_counter()
    p = model.feature_visualization(f"{layer}:{channel}", iterations=iterations, warm_up=warm_up)
    std = float(p.image.astype(np.float64).std())
    first, final = p.history[0], p.history[-1]
    return {"layer": layer, "channel": channel, "warm_up": warm_up, "status": p.status.split(":")[0],
            "first": first, "final": final, "pixel_std": round(std, 2),
            "warm_up_steps": p.meta.get("warm_up_steps"),
            "rises": final > first, "not_blank": std > FLAT_STD and not p.status.startswith("blank"),
            "seconds": round(time.perf_counter() - t0, 2)}


def share(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["rises"] and r["not_blank"]]
    return {"channels": len(rows), "rise_and_not_blank": len(ok),
            "share": round(len(ok) / max(len(rows), 1), 4),
            "blank_status": sum(r["status"] == "blank" for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-layer", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--units", default=None, help="LAYER:A-B;LAYER:C instead of a random draw")
    ap.add_argument("--model", default=None, help="bundle directory (default: the embedded Lite0)")
    args = ap.parse_args()
    import ortviz
    from ortviz.objective.preactivation import source
    model = ortviz.load(args.model, provider="cpu", threads=args.threads)
    picks = named(args.units) if args.units else sample(model.bundle, args.per_layer, args.seed)
    deadable = {l["name"] for l in model.bundle.layers if source(model.bundle, l["name"])}
    rows, before = [], []
    for k, (layer, channel) in enumerate(picks):
        r = one(model, layer, channel, args.iterations, True)
        rows.append(r)
        if layer in deadable:
            before.append(one(model, layer, channel, args.iterations, False))
        else:
            before.append(dict(r, warm_up=False))   # the warm-up never acts here: the same run
        print(f"{k + 1}/{len(picks)} {layer}:{channel} {r['status']} first {r['first']:.4g} "
              f"final {r['final']:.4g} std {r['pixel_std']} ({before[-1]['status']} "
              f"{before[-1]['final']:.4g} without warm-up) {r['seconds']}s", flush=True)
    result = {"command": " ".join(sys.argv), "model": args.model or "embedded EfficientNet-Lite0",
              "seed": args.seed, "per_layer": args.per_layer,
              "units": args.units,
              "iterations": args.iterations, "flat_std": FLAT_STD,
              "machine": common.machine(),
              "with_warm_up": share(rows), "without_warm_up": share(before),
              "dead_capable_layers": sorted(deadable),
              "with_warm_up_on_those": share([r for r in rows if r["layer"] in deadable]),
              "without_warm_up_on_those": share([r for r in before if r["layer"] in deadable]),
              "rows": rows, "rows_without_warm_up": [r for r in before if r["layer"] in deadable]}
    out = args.out or HERE / "results" / f"units-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("with_warm_up", "without_warm_up",
                                             "with_warm_up_on_those", "without_warm_up_on_those")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
