"""Benchmark worker for the ortviz rows: stock ONNX Runtime, runtime environment (.venv).

    python bench/ort_worker.py            serve the driver (JSON lines on stdin/stdout)
    python bench/ort_worker.py --rss ROW  peak memory of one row in this fresh process

Rows (each call times one step and returns seconds):
  forward                 the forward graph (logits), bare InferenceSession.run
  grad.bare:<technique>   that technique's gradient graph, bare InferenceSession.run
  grad.engine:<technique> the same through the engine (Context.grad: checks, feeds, run, NaN check)
  grad.overhead:<technique> the engine's own part of that: Context.grad with the session's run
                          replaced by stored outputs
  iter:<technique>        one iteration of the installed technique plugin's own loop, through
                          the engine: the time between two of its progress reports
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from scale import bundle_dir  # noqa: E402  (where bench/scale.py exports each size and batch)

common.limit_threads()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from photo import square_photo  # noqa: E402

from ortviz.bundle.embedded import default_bundle  # noqa: E402
from ortviz.bundle.graphs import ALIASES  # noqa: E402
from ortviz.bundle.reader import Bundle  # noqa: E402
from ortviz.engine.sessions import Engine  # noqa: E402
from ortviz.render import modelspace  # noqa: E402
from ortviz.render.context import Context  # noqa: E402
from ortviz.techniques.registry import techniques  # noqa: E402


class Shared:
    def __init__(self, bundle: str | None = None, threads: int = common.THREADS,
                 device: str = "cpu", iobinding: bool = False):
        self.bundle = Bundle.open(bundle or default_bundle())
        self.device = device
        self.iobinding = iobinding or device != "cpu"
        self.engine = Engine(self.bundle, provider=device, threads=threads)
        pre = self.bundle.manifest["preprocessing"]
        self.mean, self.std = pre["mean"], pre["std"]
        self.photo = square_photo(self.bundle.input["shape"][-1])
        self.x = modelspace.to_model(self.photo, self.mean, self.std)
        self.target = self.bundle.labels.index(common.TARGET)
        self.rng = np.random.default_rng(0)

    def context(self, **kw) -> Context:
        return Context(self.engine, np.random.default_rng(0), kw.pop("iterations", 1),
                       target=self.target, photo=self.photo, **kw)

    def inputs(self, technique: str) -> dict:
        """The extra inputs of a technique's gradient graph, as the technique makes them."""
        objective, layer = common.GRAPHS[technique]
        if objective.startswith("class_"):
            w = np.zeros((1, len(self.bundle.labels)), np.float32)
            w[0, self.target] = 1.0
            return {"class_weights": w}
        if objective == "feature_distance":
            return {"target_features": self.engine.features(self.x, layer)}
        return {}


def timed(f):
    def step():
        t = time.perf_counter()
        f()
        return time.perf_counter() - t
    return step


def bare_run(s: Shared, sess, names: list[str], feeds: dict):
    """One bare InferenceSession run. On a GPU (or with --iobinding): IO binding with inputs
    and outputs in device buffers made once, nothing copied per call."""
    if not s.iobinding:
        return lambda: sess.run(names, feeds)
    dev = "cuda" if s.device in ("cuda", "tensorrt") else "cpu"
    binding = sess.io_binding()
    held = []
    for k, v in feeds.items():
        held.append(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v), dev, 0))
        binding.bind_ortvalue_input(k, held[-1])
    shapes = {o.name: o.shape for o in sess.get_outputs()}
    for n in names:
        held.append(ort.OrtValue.ortvalue_from_shape_and_type(shapes[n], np.float32, dev, 0))
        binding.bind_ortvalue_output(n, held[-1])
    sess.run_with_iobinding(binding)
    return lambda: sess.run_with_iobinding(binding)  # synchronous: returns when the run is done


def forward_row(s: Shared):
    sess = s.engine.session(s.bundle.manifest["forward"]["file"])
    names = [s.bundle.manifest["logits"]["name"]]
    feeds = {s.engine.image_name: s.x}
    return timed(bare_run(s, sess, names, feeds))


def graph_feeds(s: Shared, technique: str, entry) -> dict:
    """The feeds of the format-2 graph serving a technique's objective, as the engine makes
    them from the technique's inputs (ortviz.bundle.graphs.ALIASES)."""
    objective, _ = common.GRAPHS[technique]
    shape = tuple(next(v for k, v in entry.inputs.items() if k != s.engine.image_name))
    feeds, _ = ALIASES[objective].translate(s.inputs(technique), shape)
    return {s.engine.image_name: s.x, **feeds}


def bare_row(technique: str):
    def make(s: Shared):
        objective, layer = common.GRAPHS[technique]
        entry = s.bundle.graph(objective, layer)
        sess = s.engine.session(entry.file)
        names = [entry.outputs["loss"], entry.outputs["grad"]]
        return timed(bare_run(s, sess, names, graph_feeds(s, technique, entry)))
    return make


def engine_row(technique: str):
    def make(s: Shared):
        objective, layer = common.GRAPHS[technique]
        ctx = s.context(layer=layer)
        inputs = s.inputs(technique)
        return timed(lambda: ctx.grad(objective, layer, s.x, **inputs))
    return make


def overhead_row(technique: str):
    """The engine's own cost per gradient call: Context.grad on an engine whose session returns
    stored outputs at once (so the machine's load cannot hide a small overhead in noise)."""
    def make(s: Shared):
        objective, layer = common.GRAPHS[technique]
        engine = Engine(s.bundle, provider=s.device, threads=s.engine.threads, io_binding=False)
        entry = s.bundle.graph(objective, layer)
        sess = engine.session(entry.file)
        inputs = s.inputs(technique)
        stored = sess.run([entry.outputs["loss"], entry.outputs["grad"]],
                          graph_feeds(s, technique, entry))
        sess.run = lambda names, feeds, *a, **k: stored  # this engine's session only
        ctx = Context(engine, np.random.default_rng(0), 1, layer=layer, target=s.target, photo=s.photo)
        return timed(lambda: ctx.grad(objective, layer, s.x, **inputs))
    return make


class TechniqueRun:
    """The installed plugin's own loop, run in a thread that waits in its progress callback:
    each step lets exactly one more iteration run and returns its wall time (from the end of
    one progress report to the start of the next, so the waiting is not counted)."""

    def __init__(self, s: Shared, technique: str):
        name, overrides = common.TECHNIQUES[technique]
        self.tech = techniques()[name]
        self.params = {p.name: p.default for p in self.tech.params}
        self.params.update({k: v for k, v in overrides.items() if k in self.params})
        self.params["iterations"] = 10 ** 7  # never ends: the driver decides how many run
        layer = common.GRAPHS[technique][1] if self.tech.default_layer else None
        self.ctx = s.context(layer=layer, iterations=self.params["iterations"],
                             progress=self._progress)
        self._go: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self._t0 = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def _progress(self, t, n, loss):
        self._done.put(("ok", time.perf_counter() - self._t0))
        self._go.get()
        self._t0 = time.perf_counter()

    def _run(self):
        try:
            self._go.get()
            self._t0 = time.perf_counter()  # the first step includes the technique's set-up
            self.tech.run(self.ctx, **self.params)
            self._done.put(("error", "the technique's loop ended"))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver
            self._done.put(("error", f"{type(exc).__name__}: {exc}"))

    def __call__(self) -> float:
        self._go.put(True)
        kind, value = self._done.get()
        if kind != "ok":
            raise RuntimeError(value)
        return value


def scale_row(name: str, threads: int):
    """``scale.grad:S:B`` / ``scale.fwd:S:B``: bare run of the class-score gradient graph or the
    forward graph of the bundle exported at size S and batch B (random image)."""
    kind, size, batch = name.split(":")
    engine = Engine(bundle_dir(int(size), int(batch)), provider="cpu", threads=threads)
    x = np.random.default_rng(0).standard_normal(engine.image_shape).astype(np.float32)
    if kind == "scale.fwd":
        sess = engine.session(engine.bundle.manifest["forward"]["file"])
        names = [engine.bundle.manifest["logits"]["name"]]
        feeds = {engine.image_name: x}
    else:
        entry = engine.bundle.graph("class_score", "logits")
        sess = engine.session(entry.file)
        names = [entry.outputs["loss"], entry.outputs["grad"]]
        w = np.zeros(entry.inputs["class_weights"], np.float32)
        w[:, 130] = 1.0
        feeds = {engine.image_name: x, "class_weights": w, "log_softmax_weights": 0 * w}
    return timed(lambda: sess.run(names, feeds))


ROWS = {"forward": forward_row}
for _t in common.GRAPHS:
    ROWS[f"grad.bare:{_t}"] = bare_row(_t)
    ROWS[f"grad.engine:{_t}"] = engine_row(_t)
    ROWS[f"grad.overhead:{_t}"] = overhead_row(_t)
    ROWS[f"iter:{_t}"] = (lambda t: lambda s: TechniqueRun(s, t))(_t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rss", metavar="ROW")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (an onnxruntime provider name)")
    ap.add_argument("--iobinding", action="store_true", help="bare rows through IO binding on the CPU too")
    args = ap.parse_args()
    make_shared = lambda: Shared(threads=args.threads, device=args.device, iobinding=args.iobinding)  # noqa: E731
    if args.rss:
        common.rss_main(ROWS, args.rss, args.iters, make_shared)
        return
    state: dict = {}
    rows: dict = {}

    def info():
        tech = techniques()
        return {"runtime": "onnxruntime", "version": ort.__version__, "device": args.device,
                "providers": ort.get_available_providers(), "numpy": np.__version__,
                "engine_provider": state["s"].engine.provider if "s" in state else None,
                "intra_op_threads": args.threads,
                "techniques": {k: {p.name: p.default for p in v.params} for k, v in tech.items()},
                "bundle": str(state["s"].bundle.root) if "s" in state else None}

    def setup(names):
        t = time.perf_counter()
        if "s" not in state and not all(n.startswith("scale.") for n in names):
            state["s"] = make_shared()
        for n in names:
            rows[n] = scale_row(n, args.threads) if n.startswith("scale.") else ROWS[n](state["s"])
        return time.perf_counter() - t

    def drop(names):
        for n in names:
            rows.pop(n, None)

    common.serve({"info": info, "list": lambda: list(ROWS), "setup": setup, "drop": drop,
                  "step": lambda name: rows[name](), "quit": lambda: None})


if __name__ == "__main__":
    main()
