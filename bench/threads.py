"""Which intra-op thread setting is never the worst, idle or under load.

Runs the default bundle's class-score gradient graph with ONNX Runtime's default threads, 1,
2, and 2 with spin-waiting off, interleaved round by round in one process, and prints the
median milliseconds per call of each with the CPU, its core count and the load average.
Load the machine yourself (``--burn N`` starts N busy processes) to see the loaded case.

    .venv/bin/python bench/threads.py [--rounds 15] [--burn 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import common  # bench/common.py: the machine's description
import numpy as np
import onnxruntime as ort

from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle


def _burn():
    while True:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=5, help="calls per setting per round")
    ap.add_argument("--burn", type=int, default=0, help="busy processes to start as load")
    a = ap.parse_args()
    burners = [mp.Process(target=_burn, daemon=True) for _ in range(a.burn)]
    for p in burners:
        p.start()
    b = Bundle.open(default_bundle())
    g = b.graph("class_score", "logits")
    modes = {"default": {}, "1": {"threads": 1}, "2": {"threads": 2},
             "2, no spinning": {"threads": 2, "spin": False}}
    sessions = {}
    for name, m in modes.items():
        so = ort.SessionOptions()
        if "threads" in m:
            so.intra_op_num_threads = m["threads"]
        if m.get("spin") is False:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = ort.InferenceSession(str(b.path_of(g.file)), so,
                                              providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in g.inputs.items()}
    times = {n: [] for n in modes}
    for s in sessions.values():
        s.run(None, feeds)
    for _ in range(a.rounds):
        for n, s in sessions.items():
            t0 = time.perf_counter()
            for _ in range(a.calls):
                s.run(None, feeds)
            times[n].append((time.perf_counter() - t0) / a.calls * 1e3)
    m, load = common.machine(), os.getloadavg()
    print(f"{m['date']}: {m['cpu']} ({m['isa']}), {m['cores']} logical cores, load average "
          f"{m['loadavg'][0]:.1f} at the start and {load[0]:.1f} at the end, {a.burn} burner "
          f"processes, onnxruntime {ort.__version__}, {a.rounds} rounds of {a.calls} calls")
    print("| threads | median ms / call |\n| --- | --- |")
    for n, ts in times.items():
        print(f"| {n} | {statistics.median(ts):.1f} |")
    for p in burners:
        p.terminate()


if __name__ == "__main__":
    main()
