"""Where a gradient graph's time goes: ONNX Runtime's own profiler (SessionOptions.enable_profiling)
on one of a bundle's graphs, kernel time summed by kind.

    python bench/ort_profile.py [--graph class_score@logits] [--bundle DIR] [--threads 2] [--runs 20]

Kinds: forward convolutions (the graph's own copy of the network), backward convolutions (the
lowered ConvGrads: Conv, or ConvTranspose for the strided ones), the activation-gradient masks
(the ops between them), NCHWc layout reorders, everything else. Runs in the runtime environment.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.limit_threads()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from ortviz.bundle.embedded import default_bundle  # noqa: E402
from ortviz.bundle.reader import Bundle  # noqa: E402

MASK_OPS = {"Equal", "Cast", "Mul", "Clip", "Greater", "GreaterOrEqual", "LessOrEqual", "And", "Where"}


def kind(name: str, op: str) -> str:
    backward = "_grad" in name or "Grad" in name or name.startswith("lowered/")
    if op in ("Conv", "FusedConv"):
        return "backward convolutions" if backward else "forward convolutions (and fused ReLU6)"
    if op == "ConvTranspose":
        return "backward convolutions left as ConvTranspose"
    if op in ("ReorderInput", "ReorderOutput"):
        return "NCHWc layout reorders"
    if op in MASK_OPS:
        return "ReLU6 forward and gradient masks (elementwise)"
    return "other"


def profile(path: str, threads: int, runs: int) -> dict:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ortviz")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
    for _ in range(3):
        sess.run(None, feeds)
    # the profile holds every run; the first three are skipped below
    for _ in range(runs):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    runs_seen = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    cut = runs_seen[3]["ts"] if len(runs_seen) > 3 else 0
    by = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= cut:
            by[kind(e["name"], e["args"]["op_name"])] += e["dur"]
    total = sum(by.values())
    return {"graph": path, "threads": threads, "runs": runs,
            "model_run_ms": sum(e["dur"] for e in runs_seen[3:]) / max(1, len(runs_seen) - 3) / 1e3,
            "kinds_ms": {k: v / runs / 1e3 for k, v in by.most_common()},
            "kinds_share": {k: v / total for k, v in by.most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=str(default_bundle()))
    ap.add_argument("--graph", default="class_score@logits", help="OBJECTIVE@LAYER, or 'forward'")
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--onnx", help="profile this .onnx file instead (e.g. a bench/lowering_ab.py variant)")
    args = ap.parse_args()
    if args.onnx:
        rel = path = args.onnx
    else:
        bundle = Bundle.open(args.bundle)
        if args.graph == "forward":
            rel = bundle.manifest["forward"]["file"]
        else:
            objective, layer = args.graph.split("@")
            rel = bundle.graph(objective, layer).file
        path = str(bundle.path_of(rel))
    rec = profile(path, args.threads, args.runs)
    print(f"{rel}: {rec['model_run_ms']:.1f} ms per run ({args.threads} thread(s), {args.runs} runs, "
          "profiler on)\n\n| kind | ms | share |\n| --- | --- | --- |")
    for k, v in rec["kinds_ms"].items():
        print(f"| {k} | {v:.2f} | {rec['kinds_share'][k]:.0%} |")


if __name__ == "__main__":
    main()
