"""What the benchmark measures, shared by the driver and both workers (stdlib only).

One setting for every row: the embedded EfficientNet-Lite0 bundle, one 224x224 image, CPU,
two threads for ONNX Runtime (intra-op) and for torch. Each row is one *step*: a worker times
one call of it per request, so the driver can interleave the two runtimes call by call.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = 224
THREADS = 2
TARGET = "flamingo"  # class visualization's target (ImageNet 130)
PHOTO = "chelsea.png"  # inversion and DeepDream start from this photo, center-cropped to 224x224
INVERT_LAYER = "_blocks.5"
DREAM_LAYER = "_blocks.10"

# (objective, layer) of the three gradient graphs the techniques use at their defaults
# (class visualization's pixel recipe, which these benchmarks time, uses the log-softmax)
GRAPHS = {
    "class-viz": ("class_log_softmax", "logits"),
    "invert": ("feature_distance", INVERT_LAYER),
    "dream": ("feature_energy", DREAM_LAYER),
}
# each technique at the model's size only (one octave, no resize or tiling), else its defaults
TECHNIQUES = {
    # the pixel recipe (the torch worker emulates that loop), not the spectrum default
    "class-viz": ("class-visualization", {"octaves": 1, "param": "pixel", "transforms": "light",
                                          "objective": "log-softmax", "lr": 0.1}),
    # pixels at one size, as the torch worker's loop (the default draws a spectrum over 3 octaves)
    "invert": ("feature-inversion", {"param": "pixel", "octaves": 1}),
    "dream": ("deepdream", {"octaves": 1, "max_side": SIZE}),
}


def interleaved(calls: list, rounds: int, warmup: int = 2) -> dict:
    """Seconds per call of each callable, ``rounds`` times, in a new shuffled order each round
    (so a slow spell of a shared machine falls on all of them alike), after ``warmup`` calls
    each (sessions, weights). Keyed by ``id(call)``."""
    import random
    for c in calls:
        for _ in range(warmup):
            c()
    times = {id(c): [] for c in calls}
    for _ in range(rounds):
        order = list(calls)
        random.shuffle(order)
        for c in order:
            t0 = time.perf_counter()
            c()
            times[id(c)].append(time.perf_counter() - t0)
    return times


def save(path, result: dict) -> None:
    """Write a benchmark's result record as JSON (nothing when ``path`` is None)."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")


def limit_threads(threads: int = THREADS) -> None:
    """Before numpy/torch/onnxruntime load: their helper pools get the benchmark's thread count
    (OpenBLAS one thread, as ortviz itself sets, so numpy does not fight the runtime)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def machine() -> dict:
    """What the numbers were measured on: CPU model and vendor, the ISA flags that change
    onnxruntime's kernels (AVX2, AVX-512, VNNI, BF16, AMX), cores, load, OS; ``kind`` names the
    machine type a result table belongs to (docs/benchmarks.md keeps one table per kind)."""
    cpu, vendor, have = platform.processor() or "?", "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and cpu in ("?", "", platform.processor()):
                cpu = value.strip()
            elif key == "vendor_id" and vendor == "?":
                vendor = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(value.strip(), value.strip())
            elif key == "flags" and not have:
                have = set(value.split())
    except OSError:
        pass
    flags = [f for f in ISA_FLAGS if f in have]
    widest = "AMX" if "amx_tile" in have else "AVX-512" if "avx512f" in have else \
        "AVX2" if "avx2" in have else "no AVX2"
    return {"host": platform.node(), "cpu": cpu, "vendor": vendor, "isa": ",".join(flags),
            "kind": f"{vendor} {widest}, {os.cpu_count()} cores", "cores": os.cpu_count(),
            "os": platform.platform(), "python": platform.python_version(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# --- the line protocol between the driver and a worker ---------------------------------------
# Requests and replies are single JSON lines on the worker's stdin/stdout; the worker sends
# anything else libraries print to stderr, so stdout carries only replies.

def serve(handlers: dict) -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out.write(json.dumps({"ok": True, "result": "ready"}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            result = handlers[req["cmd"]](**req.get("args", {}))
            out.write(json.dumps({"ok": True, "result": result}) + "\n")
        except Exception as exc:  # reported to the driver, which decides
            out.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        if req["cmd"] == "quit":
            break


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def rss_main(rows: dict, name: str, iters: int, setup_shared) -> None:
    """Fresh-process peak memory of one row: set it up, run it, print one JSON line."""
    if name == "baseline":
        print(json.dumps({"row": name, "peak_rss_mb": round(peak_rss_mb(), 1)}))
        return
    shared = setup_shared()
    row = rows[name](shared)
    for _ in range(iters):
        row()
    print(json.dumps({"row": name, "peak_rss_mb": round(peak_rss_mb(), 1)}))
