"""Pictures per hour on the CPU at batch 1, 4 and 8: what batching buys a many-picture run.

    python bench/throughput.py [--quick] [--threads 2] [--iters 6] [--rounds 12]

An atlas renders thousands of pictures; a bundle exported with ``--batch B`` renders B of them
per iteration (one class or one objective per slot). This exports EfficientNet-Lite0 at 224²
with batch 1, 4 and 8 (the same bundles as bench/scale.py, in build/bench/, with the export
environment's python), then, in the runtime environment, times whole iterations of two
techniques at their defaults through the Python API, interleaved (each round runs every
(technique, batch) once, shuffled):

- class visualization with B different classes (fft + standard transforms, the default),
- feature visualization with B channels of ``_blocks.5`` (``_blocks.5:0;_blocks.5:1;...``,
  one objective per slot, as the atlas runs them).

Reported per row: ms per iteration of all B images (median of the rounds, each ``--iters``
iterations), image-iterations per second (B / that), pictures per hour at the technique's default iteration count, and the
speed-up over batch 1 (median of per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
from scale import bundle_dir, export_all  # noqa: E402  (the same bundles as bench/scale.py)

BATCHES = [1, 4, 8]
CLASSES = [1, 9, 22, 76, 130, 145, 207, 291]   # goldfish ... lion (bench/recognition.py's first 8)
LAYER = "_blocks.5"


def measure(args) -> dict:
    """Runs in the runtime environment (``--measure``): the timing loop, one JSON line out."""
    common.limit_threads(args.threads)
    import ortviz
    models = {b: ortviz.load(str(bundle_dir(common.SIZE, b)), provider="cpu", threads=args.threads)
              for b in BATCHES}
    rows = {}
    for b, m in models.items():
        rows[("class-visualization", b)] = lambda m=m, b=b: m.run(
            "class-visualization", target=CLASSES[:b], iterations=args.iters)
        rows[("feature-visualization", b)] = lambda m=m, b=b: m.run(
            "feature-visualization", iterations=args.iters,
            objective=";".join(f"{LAYER}:{c}" for c in range(b)))
    per_iter = {k: [] for k in rows}
    for k, f in rows.items():  # warm-up: sessions, caches
        f()
    for rnd in range(args.rounds):
        order = list(rows)
        random.Random(rnd).shuffle(order)
        for k in order:
            got = rows[k]()
            first = got[0] if isinstance(got, list) else got
            per_iter[k].append(first.result.seconds / args.iters)
        print(f"\rround {rnd + 1}/{args.rounds}", end="", file=sys.stderr)
    print(file=sys.stderr)
    from ortviz.techniques.registry import techniques
    defaults = {t: techniques()[t].param("iterations").default for t, _ in rows}
    out = []
    for (t, b), v in per_iter.items():
        one = per_iter[(t, 1)]
        med = statistics.median(v)
        out.append({"technique": t, "batch": b, "ms_per_iteration": round(1e3 * med, 1),
                    "range_ms": [round(1e3 * min(v), 1), round(1e3 * max(v), 1)],
                    "images_per_s": round(b / med, 2),
                    "pictures_per_hour": round(3600 * b / (med * defaults[t]), 1),
                    "default_iterations": defaults[t],
                    "speedup_over_batch_1": round(statistics.median(
                        (b / x) / (1 / y) for x, y in zip(v, one)), 2)})
    return {"rows": out}


def markdown(rec: dict) -> str:
    m = rec["machine"]
    lines = [f"Measured {m['date']} on `{m['host']}`: {m['cpu']} ({m['isa']}), {m['cores']} cores, "
             f"load average {', '.join(f'{v:.1f}' for v in m['loadavg'])}; EfficientNet-Lite0 at "
             f"{common.SIZE}², CPU EP, {rec['threads']} threads; {rec['rounds']} interleaved rounds "
             f"of {rec['iters']} iterations per (technique, batch); medians.", "",
             "| technique | batch | ms / iteration (all B images) | image-iterations / s "
             "| pictures / hour (default iterations) | over batch 1 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rec["rows"], key=lambda r: (r["technique"], r["batch"])):
        lines.append(f"| {r['technique']} | {r['batch']} | {r['ms_per_iteration']:.1f} "
                     f"({r['range_ms'][0]:.0f}–{r['range_ms'][1]:.0f}) | {r['images_per_s']:.2f} | "
                     f"{r['pictures_per_hour']:.0f} ({r['default_iterations']}) | "
                     f"{r['speedup_over_batch_1']:.2f}× |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of 3 iterations")
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--rt-python", default=str(common.ROOT / ".venv/bin/python"))
    ap.add_argument("--export-python", default=str(common.ROOT / ".venv-export/bin/python"))
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.iters, args.rounds = 3, 3
    if args.measure:
        print(json.dumps(measure(args)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(out / f"throughput-{stamp}.log", "w") as log:
        export_all([(common.SIZE, b) for b in BATCHES], args.export_python, log)
        rec = {"machine": common.machine(), "threads": args.threads, "iters": args.iters,
               "rounds": args.rounds}
        r = subprocess.run([args.rt_python, str(HERE / "throughput.py"), "--measure",
                            "--threads", str(args.threads), "--iters", str(args.iters),
                            "--rounds", str(args.rounds)], cwd=common.ROOT, stdout=subprocess.PIPE,
                           stderr=None, text=True, check=True)
        rec.update(json.loads(r.stdout.strip().splitlines()[-1]))
    text = markdown(rec)
    (out / f"throughput-{stamp}.json").write_text(json.dumps(rec, indent=1) + "\n")
    (out / f"throughput-{stamp}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
