"""Run a technique: the context its loop sees, and the result it leaves.

The context gives a technique gradients at any image size (direct, resized through the exact
adjoint of the resize, or tiled with random shifts over the fixed-size graph), catches NaN/Inf
in the iteration where it appears, keeps the last good image, takes snapshots and reports
progress. ``render`` runs one technique for one target and returns a :class:`Result`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import imaging
from .engine import Engine, Step
from .technique import Technique


class NumericalError(RuntimeError):
    pass


@dataclass
class Context:
    engine: Engine
    rng: np.random.Generator
    iterations: int
    layer: str | None = None
    target: int | None = None
    photo: np.ndarray | None = None            # HxWx3 uint8, photo-start techniques
    snapshot_every: int = 0
    progress: Callable[[int, int, float], None] = lambda t, n, loss: None
    frames: list = field(default_factory=list)
    history: list = field(default_factory=list)
    last_good: np.ndarray | None = None

    def __post_init__(self):
        pre = self.engine.bundle.manifest["preprocessing"]
        self.mean, self.std = pre["mean"], pre["std"]
        self.low, self.high = imaging.valid_range(self.mean, self.std)
        self.size = tuple(self.engine.image_shape[2:])
        self.classes = len(self.engine.bundle.labels)

    # -- images ------------------------------------------------------------------------------
    def noise(self, scale: float = 0.1) -> np.ndarray:
        """Small noise around the mid-grey image, in model space."""
        grey = imaging.to_model(np.full((*self.size, 3), 127, np.uint8), self.mean, self.std)
        x = grey + scale * self.rng.standard_normal(grey.shape).astype(np.float32)
        return imaging.clip(x, self.low, self.high).astype(np.float32)

    def photo_model(self, size_hw=None) -> np.ndarray:
        if self.photo is None:
            raise ValueError("this technique needs a photo")
        return imaging.to_model(self.photo, self.mean, self.std, size=size_hw or self.size)

    def clip(self, x: np.ndarray) -> np.ndarray:
        return imaging.clip(x, self.low, self.high).astype(np.float32)

    def one_hot(self, index: int | None = None) -> np.ndarray:
        w = np.zeros((1, self.classes), np.float32)
        w[0, self.target if index is None else index] = 1.0
        return w

    # -- gradients ---------------------------------------------------------------------------
    def grad(self, objective: str, layer: str, x: np.ndarray, **inputs) -> Step:
        """Loss and gradient at any image size; raises NumericalError on NaN/Inf."""
        f = self.engine.gradient(objective, layer)
        hw = tuple(x.shape[2:])
        if hw == self.size:
            step = f(x, **inputs)
        elif hw[0] <= self.size[0] or hw[1] <= self.size[1]:
            big = imaging.resize(x, self.size)
            inner = f(big, **inputs)
            step = Step(inner.loss, imaging.resize_transpose(inner.grad, hw))
        else:
            losses = []

            def tile_grad(t):
                s = f(t, **inputs)
                losses.append(s.loss)
                return s.grad

            g = imaging.tiled_gradient(x, self.size, tile_grad, self.rng)
            step = Step(float(np.mean(losses)), g)
        if not (np.isfinite(step.loss) and np.isfinite(step.grad).all()):
            raise NumericalError(f"{objective} at {layer} gave a non-finite "
                                 f"{'loss' if not np.isfinite(step.loss) else 'gradient'}")
        return step

    # -- bookkeeping -------------------------------------------------------------------------
    def report(self, t: int, loss: float, x: np.ndarray) -> None:
        """Call once per iteration with the iteration's loss and the image after the step."""
        if not (np.isfinite(loss) and np.isfinite(x).all()):
            raise NumericalError(f"non-finite value in iteration {t + 1}")
        self.last_good = x.copy()
        self.history.append(float(loss))
        if self.snapshot_every and (t + 1) % self.snapshot_every == 0:
            self.frames.append(imaging.from_model(x, self.mean, self.std))
        self.progress(t + 1, self.iterations, float(loss))


@dataclass
class Result:
    image: np.ndarray          # HxWx3 uint8
    x: np.ndarray              # model space, NCHW
    frames: list
    history: list
    status: str                # "complete", "interrupted", or "stopped: <reason>"
    seconds: float
    iterations_done: int
    top5: list


def top5(engine: Engine, x: np.ndarray) -> list[dict]:
    size = tuple(engine.image_shape[2:])
    xs = x if tuple(x.shape[2:]) == size else imaging.resize(x, size)
    logits = engine.logits(xs.astype(np.float32))[0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    labels = engine.bundle.labels
    return [{"class": int(i), "label": labels[i], "probability": round(float(p[i]), 6)}
            for i in np.argsort(-p)[:5]]


def render(technique: Technique, ctx: Context, params: dict) -> Result:
    start = time.perf_counter()
    status = "complete"
    try:
        x = technique.run(ctx, **params)
        if not np.isfinite(x).all():
            raise NumericalError("the final image holds non-finite values")
    except NumericalError as exc:
        status = f"stopped: {exc}"
        x = ctx.last_good
    except KeyboardInterrupt:
        status = "interrupted"
        x = ctx.last_good
    seconds = time.perf_counter() - start
    if x is None:
        raise NumericalError(f"{technique.name}: {status}; no good image to keep")
    image = imaging.from_model(x, ctx.mean, ctx.std)
    return Result(image, x, ctx.frames, ctx.history, status, seconds, len(ctx.history),
                  top5(ctx.engine, x))
