"""The browser page's iteration (``ortviz serve``, onnxruntime-web on WebAssembly in headless
Chromium) against the Python engine's same iteration on the same machine.

Rows (ms per iteration, medians over the iterations of a run, then the median of the rounds;
browser and Python runs alternate round by round, so a slow spell of a shared machine falls on
both):

- ``dream``: DeepDream's iteration at the model's input size (a circular jitter, the gradient
  graph of the middle layer's energy, the shift back, a normalized step, the clip), the page's
  recipe; Python: the same in numpy with the engine's gradient;
- ``feature-viz``: a channel visualization's iteration (``_blocks.10:5``), the page's
  step graphs (pre, the gradient graph, post); Python: :class:`ortviz.render.stepgraph.Stepper`, the same
  graphs (``--step graph``).

The page times each iteration from the draw to the next image (the picture's drawing on the
canvas is not counted); sessions are made before the first. Runtime environment, Chromium on
the PATH (``scripts/envs.sh browser``), playwright (the test extra):

    .venv/bin/python bench/browser.py [--rounds 3] [--iterations 10] [--threads 2] [--out bench/results/browser.json]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

import ortviz  # first: it limits numpy's BLAS to one thread before numpy loads
from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.reader import Bundle
from ortviz.objective.bind import Bound
from ortviz.objective.positions import resolve_layer
from ortviz.objective.text import parse
from ortviz.render.optim import Adam
from ortviz.render.param import make
from ortviz.render.stepgraph import Stepper
from ortviz.serve import Site, make_server
from ortviz.serve.describe import deepdream_defaults, recipe_of, transforms_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CHANNEL = "_blocks.10:5"


def python_dream(model, iterations: int, seed: int) -> list[float]:
    """The page's DeepDream iteration in numpy and the engine: ms per iteration."""
    from ortviz.render.modelspace import to_model, valid_range
    from ortviz.run.imagefiles import load_image
    pre = model.bundle.manifest["preprocessing"]
    layer = resolve_layer(model.bundle.layers, "middle")
    f = Bound(model.engine, [parse(layer, model.bundle)])
    size = tuple(model.engine.image_shape[2:])
    x = to_model(load_image(sample()), pre["mean"], pre["std"], size=size)
    low, high = valid_range(pre["mean"], pre["std"])
    dream = deepdream_defaults()
    rng, j, lr, out = np.random.default_rng(seed), dream["jitter"], dream["lr"], []
    for _ in range(iterations):
        t = time.perf_counter()
        oy, ox = (int(v) for v in rng.integers(-j, j + 1, size=2))
        _, g = f(np.roll(x, (oy, ox), axis=(-2, -1)))
        g = np.roll(g, (-oy, -ox), axis=(-2, -1))
        x = np.clip(x + lr * g / (np.abs(g).mean() + 1e-8), low, high).astype(np.float32)
        out.append(1e3 * (time.perf_counter() - t))
    return out


def python_feature_viz(model, iterations: int, seed: int) -> list[float]:
    """The page's feature-visualization iteration on the same step graphs: ms per iteration."""
    r = recipe_of(model.bundle)
    shape = tuple(model.engine.image_shape)
    pre = model.bundle.manifest["preprocessing"]
    from ortviz.render.modelspace import valid_range
    param = make("fft", shape, *valid_range(pre["mean"], pre["std"]))
    rng = np.random.default_rng(seed)
    run = Stepper(model.engine, param, transforms_of(model.bundle), Adam(r.lr), param.init(rng), shape[2:])
    f = Bound(model.engine, [parse(CHANNEL, model.bundle)])
    out = []
    for _ in range(iterations):
        t = time.perf_counter()
        run.step(rng, f)
        out.append(1e3 * (time.perf_counter() - t))
    return out


def browser_run(page, base: str, technique: str, objective: str, iterations: int, seed: int, threads) -> dict:
    extra = f"&threads={threads}" if threads else ""
    page.goto(f"{base}/?technique={technique}&objective={objective}&iterations={iterations}&seed={seed}&run=1{extra}")
    page.wait_for_function("document.body.dataset.status === 'done' || document.body.dataset.status.startsWith('error')",
                           timeout=600_000)
    status = page.evaluate("document.body.dataset.status")
    if status != "done":
        raise SystemExit(f"the page stopped: {status}")
    return page.evaluate("window.ortvizResult")


ROWS = {"dream": "DeepDream (the middle layer's energy)", "feature-viz": f"channel visualization ({CHANNEL})"}


def table(result: dict) -> str:
    """The markdown table of a results file (also docs/browser.md's, by scripts/docs_tables.py)."""
    m = result["machine"]
    load = ", ".join(f"{v:.1f}" for v in m["loadavg"] or [])
    out = [f"{m['cpu']} ({m['kind']}), {m['date'][:16]}, load average {load} at the end (a shared "
           f"machine); browser: headless Chromium, onnxruntime-web on WebAssembly, "
           f"threads {result['browser_threads']}; Python: onnxruntime, threads {result['python_threads']}; "
           f"{result['rounds']} alternating rounds of {result['iterations']} iterations, medians.", "",
           "| iteration | browser, ms | Python engine, ms | browser / Python |", "| --- | --- | --- | --- |"]
    for k, name in ROWS.items():
        out.append(f"| {name} | {result['ms'][f'{k}.browser']:.0f} | {result['ms'][f'{k}.python']:.0f} | "
                   f"{result['ratio_browser_to_python'][k]:.1f}× |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="the Python engine's threads")
    ap.add_argument("--page-threads", type=int, default=None, help="the page's WebAssembly threads "
                    "(default: onnxruntime-web's choice, half the cores, at most 4)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("error: no chromium on the PATH (scripts/envs.sh browser)")
    model = ortviz.load(threads=args.threads)
    site = Site(Bundle.open(default_bundle()), sample())
    server = make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = {"dream": ("deepdream", "", python_dream), "feature-viz": ("feature-viz", CHANNEL, python_feature_viz)}
    ms = {f"{k}.{w}": [] for k in rows for w in ("browser", "python")}
    threads = None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = b.new_page()
        for r in range(args.rounds):
            for name, (technique, objective, py) in rows.items():
                res = browser_run(page, base, technique, objective, args.iterations, r, args.page_threads)
                threads = res["threads"]
                ms[f"{name}.browser"].append(res["ms_per_iteration"])
                ms[f"{name}.python"].append(float(np.median(py(model, args.iterations, r))))
                print(f"round {r}: {name} browser {ms[f'{name}.browser'][-1]:.1f} ms, "
                      f"python {ms[f'{name}.python'][-1]:.1f} ms", flush=True)
        b.close()
    server.shutdown()
    med = {k: round(float(np.median(v)), 1) for k, v in ms.items()}
    machine = common.machine()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": machine["cpu"], "machine": machine,
              "chromium": chromium, "browser_threads": threads, "python_threads": args.threads,
              "rounds": args.rounds, "iterations": args.iterations, "ms": med, "per_round": ms,
              "ratio_browser_to_python": {k: round(med[f"{k}.browser"] / med[f"{k}.python"], 2) for k in rows}}
    print(table(result))
    common.save(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
