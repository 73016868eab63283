"""How an iteration's cost grows with the image size and the batch: a plot and fitted exponents.

    python bench/scale.py [--quick]     (any python; the bundles come from the export
                                         environment, the timing from both, the plot from
                                         the runtime environment's Pillow)

Bundles of EfficientNet-Lite0 at each size (batch 1) and each batch (224x224) are exported into
build/bench/ with the documented command, once per version of the exporter (a stamp file holds
the hash of ortviz/export/*.py):
    ortviz export torch ortviz.export.zoo:efficientnet_lite0 --size S [--batch B] \\
        --layers _blocks.5 -o build/bench/lite0-S[-bB] --preprocess lite
Timed per configuration, interleaved: the class-score gradient graph (bare run, the whole
network), the forward graph, and PyTorch eager's class-score input gradient; few repetitions
(this part is kept short). Fitted: t = a * n^p by least squares on log t, with n the pixel count
per image (sizes) or the batch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
from run import Worker, round_order  # noqa: E402

SIZES = [112, 160, 224, 320, 448, 640, 896]
BATCHES = [1, 2, 4, 8, 16]
SERIES = [("ort:scale.grad", "ortviz gradient step"), ("ort:scale.fwd", "ortviz forward"),
          ("torch:scale.grad", "PyTorch eager gradient")]


def bundle_dir(size: int, batch: int) -> Path:
    return common.ROOT / "build" / "bench" / (f"lite0-{size}" + (f"-b{batch}" if batch > 1 else ""))


def export_all(configs, export_python: str, log) -> None:
    stamp_file = common.ROOT / "build" / "bench" / "scale-stamp.txt"
    # every exporter module shapes the graphs (lowering, speedups, rewrites...): any change re-exports
    h = hashlib.sha256()
    for f in sorted((common.ROOT / "ortviz" / "export").glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    stamp = h.hexdigest()[:16]
    fresh = stamp_file.exists() and stamp_file.read_text().strip() == stamp
    for size, batch in configs:
        out = bundle_dir(size, batch)
        if fresh and (out / "manifest.json").exists():
            continue
        t = time.perf_counter()
        cmd = [export_python, "-m", "ortviz", "export", "torch", "ortviz.export.zoo:efficientnet_lite0",
               "--size", str(size), "--layers", "_blocks.5", "-o", str(out.relative_to(common.ROOT)),
               "--preprocess", "lite", "--force"] + (["--batch", str(batch)] if batch > 1 else [])
        subprocess.run(cmd, cwd=common.ROOT, check=True, stdout=log, stderr=log)
        print(f"exported {out.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")


def fit(xs, ys) -> tuple[float, float]:
    """(p, a) of y = a * x^p by least squares on the logs."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    p = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    return p, math.exp(my - p * mx)


def measure(configs, workers, reps: int, warmup: int) -> dict:
    out = {}
    for size, batch in configs:
        rows = [("ort", f"scale.grad:{size}:{batch}"), ("torch", f"scale.grad:{size}:{batch}"),
                ("ort", f"scale.fwd:{size}:{batch}")]
        for w in ("ort", "torch"):
            workers[w].call("setup", timeout=1800, names=[r for k, r in rows if k == w])
        samples = {f"{w}:{r}": [] for w, r in rows}
        for i in range(warmup + reps):
            for w, r in round_order(rows, i):
                time.sleep(0.01)
                sec = workers[w].call("step", name=r)
                if i >= warmup:
                    samples[f"{w}:{r}"].append(sec * 1e3)
        for w in ("ort", "torch"):
            workers[w].call("drop", names=[r for k, r in rows if k == w])
        for k, v in samples.items():
            out[k] = {"median": statistics.median(v), "min": min(v), "max": max(v), "samples_ms": v}
        print(f"{size}x{size} batch {batch}: " + ", ".join(
            f"{k.split(':')[0]} {k.split(':')[1].split('.')[1]} {out[k]['median']:.0f} ms" for k in samples),
            file=sys.stderr)
    return out


def series(rec: dict, key: str, by: str):
    res = rec["results"]
    if by == "size":
        pts = [(s * s, res[f"{key}:{s}:1"]["median"]) for s in rec["sizes"]]
    else:
        pts = [(b, res[f"{key}:{rec['batch_size']}:{b}"]["median"]) for b in rec["batches"]]
    return pts


def markdown(rec: dict) -> str:
    m = rec["machine"]
    lines = [f"Measured {m['date']} on `{m['host']}` ({m['cpu']}, {m['cores']} cores, load average "
             f"{', '.join(f'{v:.1f}' for v in m['loadavg'])}), {rec['threads']} threads, "
             f"{rec['reps']} interleaved repetitions after {rec['warmup']} warm-up; ms, median.", "",
             "| image | batch | ortviz gradient | ortviz forward | PyTorch eager gradient | eager ÷ ortviz |",
             "| --- | --- | --- | --- | --- | --- |"]
    res = rec["results"]
    for s, b in rec["configs"]:
        o, f, t = (res[f"{k}:{s}:{b}"]["median"] for k, _ in SERIES)
        lines.append(f"| {s}² | {b} | {o:.1f} | {f:.1f} | {t:.1f} | {t / o:.2f}× |")
    lines += ["", "Fitted exponents p of t ∝ n^p (n: pixels per image at batch 1; batch at "
              f"{rec['batch_size']}²):", "", "| series | size | batch |", "| --- | --- | --- |"]
    for key, label in SERIES:
        lines.append(f"| {label} | {rec['fits']['size'][key]['p']:.2f} | {rec['fits']['batch'][key]['p']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(rec: dict, path: Path) -> None:
    """Two log-log panels (size, batch) drawn with Pillow: points, fitted lines, exponents."""
    from PIL import Image, ImageDraw, ImageFont
    W, H, pad = 1200, 560, 70
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=15)
        small = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        font = small = ImageFont.load_default()
    colors = {"ort:scale.grad": (200, 50, 40), "ort:scale.fwd": (240, 150, 40), "torch:scale.grad": (40, 90, 200)}
    m = rec["machine"]
    d.text((pad, 12), f"EfficientNet-Lite0 on {m['cpu']} ({m['cores']} cores), {rec['threads']} threads, "
           f"{m['date'][:10]}: time per call (ms), log-log", fill="black", font=font)
    panels = [("size", "pixels per image (batch 1)", lambda n: f"{int(round(math.sqrt(n)))}x{int(round(math.sqrt(n)))}"),
              ("batch", f"batch ({rec['batch_size']}x{rec['batch_size']})", lambda n: str(int(n)))]
    pw = (W - 3 * pad) // 2
    for i, (by, xlabel, tick) in enumerate(panels):
        x0, y0, x1, y1 = pad + i * (pw + pad), 60, pad + i * (pw + pad) + pw, H - 70
        pts = {k: series(rec, k, by) for k, _ in SERIES}
        xs = [x for x, _ in pts[SERIES[0][0]]]
        ys = [y for p in pts.values() for _, y in p]
        lx0, lx1 = math.log10(min(xs)) - 0.05, math.log10(max(xs)) + 0.05
        ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        X = lambda v: x0 + (math.log10(v) - lx0) / (lx1 - lx0) * (x1 - x0)  # noqa: E731
        Y = lambda v: y1 - (math.log10(v) - ly0) / (ly1 - ly0) * (y1 - y0)  # noqa: E731
        d.rectangle([x0, y0, x1, y1], outline="black")
        for e in range(ly0, ly1 + 1):
            for mult in (1, 2, 5):
                v = mult * 10 ** e
                if 10 ** ly0 <= v <= 10 ** ly1:
                    d.line([x0, Y(v), x1, Y(v)], fill=(225, 225, 225) if mult > 1 else (190, 190, 190))
                    d.text((x0 - 8, Y(v)), f"{v:g}", fill="black", font=small, anchor="rm")
        for v in xs:
            d.line([X(v), y0, X(v), y1], fill=(235, 235, 235))
            d.text((X(v), y1 + 6), tick(v), fill="black", font=small, anchor="ma")
        d.text(((x0 + x1) / 2, y1 + 26), xlabel, fill="black", font=font, anchor="ma")
        for j, (key, label) in enumerate(SERIES):
            c = colors[key]
            p, a = rec["fits"][by][key]["p"], rec["fits"][by][key]["a"]
            d.line([X(xs[0]), Y(a * xs[0] ** p), X(xs[-1]), Y(a * xs[-1] ** p)], fill=c, width=2)
            for x, y in pts[key]:
                d.ellipse([X(x) - 4, Y(y) - 4, X(x) + 4, Y(y) + 4], fill=c)
            d.text((x0 + 10, y0 + 8 + 20 * j), f"{label}: t ~ n^{p:.2f}", fill=c, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 112, 224, 448 and batches 1, 4, 16")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--rt-python", default=str(common.ROOT / ".venv/bin/python"))
    ap.add_argument("--export-python", default=str(common.ROOT / ".venv-export/bin/python"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--plot", default=str(common.ROOT / "docs" / "scaling.png"))
    ap.add_argument("--replot", metavar="JSON", help="only draw the plot from a results file")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        return
    sizes = [112, 224, 448] if args.quick else SIZES
    batches = [1, 4, 16] if args.quick else BATCHES
    reps, warmup = args.reps or (2 if args.quick else 5), 1
    configs = [(s, 1) for s in sizes] + [(common.SIZE, b) for b in batches if b > 1]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rec = {"machine": common.machine(), "threads": args.threads, "reps": reps, "warmup": warmup,
           "sizes": sizes, "batches": batches, "batch_size": common.SIZE, "configs": configs}
    with open(out / f"scale-{stamp}.log", "w") as log:
        export_all(configs, args.export_python, log)
        workers = {"ort": Worker("ort", args.rt_python, "ort_worker.py", args.threads, log),
                   "torch": Worker("torch", args.export_python, "torch_worker.py", args.threads, log)}
        try:
            rec["results"] = measure(configs, workers, reps, warmup)
        finally:
            for w in workers.values():
                w.close()
    rec["fits"] = {by: {} for by in ("size", "batch")}
    for by in ("size", "batch"):
        for key, _ in SERIES:
            p, a = fit(*zip(*series(rec, key, by)))
            rec["fits"][by][key] = {"p": p, "a": a}
    stem = f"scale-{stamp}{'-quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps(rec, indent=1) + "\n")
    text = markdown(rec)
    (out / f"{stem}.md").write_text(text)
    print(text)
    subprocess.run([args.rt_python, __file__, "--replot", str(out / f"{stem}.json"), "--plot", args.plot],
                   check=True)
    print(f"written: {out / stem}.json/.md, {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
