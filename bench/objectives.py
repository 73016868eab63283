"""Objectives on the format-2 graphs against the format-1 per-objective graphs they replace.

    .venv/bin/python bench/objectives.py [--rounds 40] [--threads 2] [--old-commit 9dd4dee]

The format-1 default bundle is taken from git (``--old-commit``: the last commit before format 2)
into a temporary folder and its graphs run as plain onnxruntime sessions. Each row times one
gradient call of an objective through ``objective.bind(engine)`` (what the render loop calls:
weights built once, fed every call) against the format-1 graph that computed the same thing
(``feature_energy`` at the layer for layer terms, ``class_score`` / ``class_log_softmax`` at the
logits), interleaved call by call in shuffled order after a warm-up, on one random 224x224
image; it reports medians, min-max and the median of the per-round ratios new / old. Also: a sum
over two layers (two graph runs), a numpy objective (forward + the graph), and the bundles'
file counts and sizes. Writes bench/results/objectives-<time>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import common  # bench/common.py: interleaved timing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import ortviz  # noqa: E402,F401  (one BLAS thread before numpy)
from ortviz.bundle.embedded import default_bundle  # noqa: E402
from ortviz.engine.sessions import Engine  # noqa: E402
from ortviz.objective import algebra as A  # noqa: E402

BUNDLE = "models/efficientnet-lite0"


def old_bundle(commit: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", commit, BUNDLE],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / BUNDLE


def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 4
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bundle_stats(path: Path) -> dict:
    files = [p for p in path.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "graph_bytes": sum(p.stat().st_size for p in files if p.suffix == ".onnx")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--old-commit", default="9dd4dee")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    engine = Engine(default_bundle(), provider="cpu", threads=args.threads)
    rng = np.random.default_rng(0)
    x = (0.5 * rng.standard_normal(engine.image_shape)).astype(np.float32)
    onehot = np.zeros((1, 1000), np.float32)
    onehot[0, 130] = 1
    gram_layer = "_blocks.10"

    def gram(feats):
        phi = feats[gram_layer].astype(np.float64)
        f = phi.reshape(phi.shape[0], phi.shape[1], -1)
        g = f @ f.transpose(0, 2, 1) / f.shape[2]
        return float((g ** 2).sum()), {gram_layer: (4 * g @ f / f.shape[2]).reshape(phi.shape)}

    with tempfile.TemporaryDirectory(prefix="ortviz-bench-") as tmp:
        old = old_bundle(args.old_commit, Path(tmp))
        om = json.loads((old / "manifest.json").read_text())

        def old_call(objective, layer, **feeds):
            entry = next(g for g in om["graphs"] if g["objective"] == objective and g["layer"] == layer)
            sess = session(old / entry["file"], args.threads)
            names = ["loss", entry["outputs"]["grad"]]
            return lambda: sess.run(names, {"image": x, **feeds})

        t10 = rng.standard_normal((1, 112, 14, 14)).astype(np.float32)
        rows = []
        for layer in ("_conv_stem", "_blocks.5", "_blocks.10", "_blocks.15"):
            base = old_call("feature_energy", layer)
            shape = next(l["shape"] for l in engine.bundle.layers if l["name"] == layer)
            kinds = {"channel": A.channel(layer, 3), "neuron": A.neuron(layer, 3),
                     "direction": A.direction(layer, np.cos(np.arange(shape[1]))),
                     "energy": A.energy(layer)}
            if layer == "_blocks.10":
                kinds["distance"] = -A.distance(layer, t10)
                kinds["numpy (gram)"] = A.numpy_objective("gram", layer, gram)
            for kind, obj in kinds.items():
                f = obj.bind(engine)
                rows.append((f"{kind} @ {layer}", f"feature_energy @ {layer}", lambda f=f: f(x), base))
        rows.append(("class_score", "class_score @ logits", lambda f=A.class_score(130).bind(engine): f(x),
                     old_call("class_score", "logits", class_weights=onehot)))
        rows.append(("class_log_prob", "class_log_softmax @ logits",
                     lambda f=A.class_log_prob(130).bind(engine): f(x),
                     old_call("class_log_softmax", "logits", class_weights=onehot)))
        two = (A.channel("_blocks.9", 61) + 0.5 * A.channel("_blocks.12", 150)).bind(engine)
        rows.append(("_blocks.9:61 + 0.5*_blocks.12:150 (2 runs)", "feature_energy @ _blocks.12",
                     lambda: two(x), old_call("feature_energy", "_blocks.12")))
        three = (A.channel("_blocks.9", 61) + 0.5 * A.channel("_blocks.12", 150)
                 - A.class_log_prob(130)).bind(engine)
        rows.append(("... - class:flamingo (3 runs)", "class_log_softmax @ logits",
                     lambda: three(x), old_call("class_log_softmax", "logits", class_weights=onehot)))

        times = common.interleaved([c for r in rows for c in (r[2], r[3])], args.rounds)
        out = []
        for name, base_name, new, base in rows:
            tn, tb = times[id(new)], times[id(base)]
            out.append({"objective": name, "format1_graph": base_name,
                        "new_ms": round(1e3 * statistics.median(tn), 2),
                        "new_min_max_ms": [round(1e3 * min(tn), 2), round(1e3 * max(tn), 2)],
                        "old_ms": round(1e3 * statistics.median(tb), 2),
                        "old_min_max_ms": [round(1e3 * min(tb), 2), round(1e3 * max(tb), 2)],
                        "ratio": round(statistics.median([a / b for a, b in zip(tn, tb)]), 3)})
        sizes = {"format1": bundle_stats(old), "format2": bundle_stats(Path(default_bundle()))}

    result = {"rounds": args.rounds, "threads": args.threads, "python": platform.python_version(),
              "onnxruntime": ort.__version__, "machine": common.machine(), "rows": out,
              "bundle": sizes}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out or ROOT / "bench" / "results" / f"objectives-{stamp}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Objectives on format-2 graphs vs format-1 graphs ({args.threads} threads, "
             f"{args.rounds} interleaved rounds)", "",
             "| objective | format-1 graph | new ms (min-max) | old ms (min-max) | ratio new/old |",
             "|---|---|---|---|---|"]
    for r in out:
        lines.append(f"| {r['objective']} | {r['format1_graph']} | {r['new_ms']} "
                     f"({r['new_min_max_ms'][0]}-{r['new_min_max_ms'][1]}) | {r['old_ms']} "
                     f"({r['old_min_max_ms'][0]}-{r['old_min_max_ms'][1]}) | {r['ratio']} |")
    lines += ["", "| bundle | files | bytes | graph bytes |", "|---|---|---|---|"]
    for k, s in sizes.items():
        lines.append(f"| {k} | {s['files']} | {s['bytes']} | {s['graph_bytes']} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
