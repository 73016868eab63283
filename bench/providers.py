"""Gradient-graph time per call on the OpenVINO EP against the CPU EP, interleaved in one run.

Run in the OpenVINO environment (its onnxruntime has both providers):

    .venv-openvino/bin/python bench/providers.py [--rounds 30] [--threads 2] [--out FILE]

For each graph, one session per provider (the OpenVINO one with CPU fallback disabled, FP32);
every round calls each session once in a shuffled order after a warm-up; it reports the median
and min-max per provider and the median of the per-round ratios OpenVINO / CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ortviz.bundle import Bundle  # noqa: E402
from ortviz.defaults import default_bundle  # noqa: E402
from ortviz.providers import OPTIONS  # noqa: E402

GRAPHS = [("forward", None), ("class_log_softmax", "logits"), ("feature_distance", "_blocks.5"),
          ("feature_energy", "_blocks.10")]


def sessions(path: str, threads: int) -> dict:
    cpu = ort.SessionOptions()
    cpu.intra_op_num_threads, cpu.inter_op_num_threads = threads, 1
    cpu.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    ov = ort.SessionOptions()
    ov.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    opts = {**OPTIONS["openvino"], "device_type": "CPU", "num_of_threads": str(threads)}
    return {"cpu": ort.InferenceSession(path, cpu, providers=["CPUExecutionProvider"]),
            "openvino": ort.InferenceSession(path, ov, providers=[("OpenVINOExecutionProvider", opts)])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    bundle = Bundle.open(default_bundle())
    rng = np.random.default_rng(0)
    rows = []
    for objective, layer in GRAPHS:
        if objective == "forward":
            path, inputs = str(bundle.forward_path), {bundle.input["name"]: bundle.input["shape"]}
        else:
            entry = bundle.graph(objective, layer)
            path, inputs = str(bundle.path_of(entry.file)), entry.inputs
        feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in inputs.items()}
        sess = sessions(path, args.threads)
        for s in sess.values():
            for _ in range(3):
                s.run(None, feeds)
        times = {k: [] for k in sess}
        order = list(sess)
        for _ in range(args.rounds):
            random.shuffle(order)
            for k in order:
                t = time.perf_counter()
                sess[k].run(None, feeds)
                times[k].append(1e3 * (time.perf_counter() - t))
        ratios = [o / c for o, c in zip(times["openvino"], times["cpu"])]
        row = {"graph": objective if layer is None else f"{objective} @ {layer}",
               **{f"{k}_ms": round(statistics.median(v), 2) for k, v in times.items()},
               **{f"{k}_range_ms": [round(min(v), 2), round(max(v), 2)] for k, v in times.items()},
               "ratio_openvino_over_cpu": round(statistics.median(ratios), 3)}
        rows.append(row)
        print(f"{row['graph']:<34} cpu {row['cpu_ms']:7.2f} ms  openvino {row['openvino_ms']:7.2f} ms"
              f"  ratio {row['ratio_openvino_over_cpu']:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"rounds": args.rounds, "threads": args.threads,
                                        "onnxruntime": ort.__version__, "machine": platform.processor()
                                        or platform.machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
