"""The context a technique's loop runs in, and the results it leaves (one per batch slot).

The context gives a technique gradients at any image size (direct, resized through the exact
adjoint of the resize, or tiled with random shifts over the fixed-size graph), catches NaN/Inf
in the iteration where it appears, keeps the last good image, takes snapshots and reports
progress; :func:`results` makes a :class:`Result` per batch slot (how a run ends:
:mod:`ortviz.run.outcome`).

Batches: a bundle exported with ``--batch B`` has graphs for B images. The context works on
all B at once: ``noise`` and ``photo_model`` give B images, ``one_hot`` gives one row per target
(``targets``: class techniques put up to B targets in one run; spare slots repeat the last), and
each slot becomes its own result. With the default batch of 1 nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ortviz.engine.sessions import Engine, Step
from ortviz.errors import NumericalError  # noqa: F401 (defined in errors: the CLI needs no onnxruntime)
from ortviz.objective import algebra
from ortviz.render import modelspace


@dataclass
class Context:
    engine: Engine
    rng: np.random.Generator
    iterations: int
    layer: str | None = None
    target: int | None = None
    targets: list | None = None                # all targets of a batched run (default [target])
    photo: np.ndarray | None = None            # HxWx3 uint8, photo-start techniques
    show_photo: bool = False                   # results carry the photo at the model's size
    fit: str = "crop"                          # how photo_model brings the photo to a size
    snapshot_every: int = 0
    progress: Callable[[int, int, float], None] = lambda t, n, loss: None
    frames: list = field(default_factory=list)
    frame_steps: list = field(default_factory=list)   # the iteration (1-based) of each frame
    history: list = field(default_factory=list)
    last_good: np.ndarray | None = None
    results_per_run: int | None = None         # slots that are results when not one per target
    extras: dict = field(default_factory=dict)  # slot -> what a technique adds (see ``mark``)

    def __post_init__(self):
        pre = self.engine.bundle.manifest["preprocessing"]
        self.mean, self.std = pre["mean"], pre["std"]
        self.low, self.high = modelspace.valid_range(self.mean, self.std)
        self.size = tuple(self.engine.image_shape[2:])
        self.batch = int(self.engine.image_shape[0])
        self.classes = len(self.engine.bundle.labels)
        if self.targets is None:
            self.targets = [] if self.target is None else [self.target]
        if len(self.targets) > self.batch:
            raise ValueError(f"{len(self.targets)} targets for a batch of {self.batch}")
        if self.target is None and self.targets:
            self.target = self.targets[0]

    @property
    def slots(self) -> int:
        """How many of the batch's images are results (the others only fill the batch)."""
        if self.results_per_run:
            return self.results_per_run
        return max(1, len(self.targets))

    def carry(self, images: int) -> None:
        """The loop carries ``images`` pictures, each a result, however large the bundle's batch
        (the technique evaluates them in runs of the bundle's batch: a diversity set)."""
        self.batch = self.results_per_run = int(images)

    def mark(self, slot: int, *, status: str | None = None, alpha: np.ndarray | None = None,
             **meta) -> None:
        """What a technique says about one result slot: a ``status`` that replaces
        ``complete`` (``blank: ...``), an ``alpha`` channel (HxW, 0..1) written into the PNG,
        and entries for its sidecar."""
        e = self.extras.setdefault(slot, {"meta": {}})
        if status is not None:
            e["status"] = status
        if alpha is not None:
            e["alpha"] = alpha
        e["meta"].update(meta)

    def _fill(self, x: np.ndarray) -> np.ndarray:
        return x if x.shape[0] == self.batch else np.repeat(x[:1], self.batch, axis=0)

    # -- images ------------------------------------------------------------------------------
    def noise(self, scale: float = 0.1) -> np.ndarray:
        """Small noise around the mid-grey image, in model space. Drawn from a stream spawned
        off ``rng`` (which is left as it was), so the loop's later draws, and so each slot's
        picture, do not depend on the batch size."""
        grey = modelspace.to_model(np.full((*self.size, 3), 127, np.uint8), self.mean, self.std)
        shape = (self.batch,) + grey.shape[1:]
        x = grey + scale * self.rng.spawn(1)[0].standard_normal(shape).astype(np.float32)
        return modelspace.clip(x, self.low, self.high).astype(np.float32)

    def photo_model(self, size_hw=None) -> np.ndarray:
        """The photo in model space at ``size_hw`` (default: the model's input size), brought
        to that size by ``fit`` (:func:`ortviz.render.modelspace.fit_photo`; by default cropped to that
        aspect ratio around its centre rather than stretched; a technique with a ``fit``
        parameter sets it)."""
        if self.photo is None:
            raise ValueError("this technique needs a photo")
        fitted = modelspace.fit_photo(self.photo, size_hw or self.size, self.fit)
        return self._fill(modelspace.to_model(fitted, self.mean, self.std))

    def clip(self, x: np.ndarray) -> np.ndarray:
        return modelspace.clip(x, self.low, self.high).astype(np.float32)

    def one_hot(self, index: int | None = None) -> np.ndarray:
        """Class weights, one row per batch slot: ``index`` everywhere, or the targets."""
        rows = [index] * self.batch if index is not None else \
            self.targets + [self.targets[-1]] * (self.batch - len(self.targets))
        w = np.zeros((self.batch, self.classes), np.float32)
        w[np.arange(self.batch), rows] = 1.0
        return w

    # -- gradients ---------------------------------------------------------------------------
    def grad(self, objective: str, layer: str, x: np.ndarray, **inputs) -> Step:
        """Loss and gradient of one of the bundle's graphs at any image size (a format-1 name
        such as ``class_score`` runs on the built-in graph serving it); raises NumericalError
        on NaN/Inf."""
        f = self.engine.gradient(objective, layer)
        return self._at_any_size(lambda t: f(t, **inputs), x, f"{objective} at {layer}")

    def bind(self, objective) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """An objective value of :mod:`ortviz.objective.algebra` (or a list: one per batch slot, which
        also makes each of them a result) as ``f(x) -> (loss, grad)`` at any image size, for
        the render loop; raises NumericalError on NaN/Inf."""
        if isinstance(objective, (list, tuple)):
            bound = algebra.batch(objective).bind(self.engine)
            self.results_per_run = len(objective)
        else:
            bound = objective.bind(self.engine)

        def f(x):
            step = self._at_any_size(lambda t: Step(*bound(t)), x, bound.text)
            return step.loss, step.grad

        return f

    def _at_any_size(self, f: Callable[[np.ndarray], Step], x: np.ndarray, what: str) -> Step:
        hw = tuple(x.shape[2:])
        if hw == self.size:
            step = f(x)
        elif hw[0] <= self.size[0] or hw[1] <= self.size[1]:
            big = modelspace.resize(x, self.size)
            inner = f(big)
            step = Step(inner.loss, modelspace.resize_transpose(inner.grad, hw))
        else:
            losses = []

            def tile_grad(t):
                s = f(t)
                losses.append(s.loss)
                return s.grad

            g = modelspace.tiled_gradient(x, self.size, tile_grad, self.rng)
            step = Step(float(np.mean(losses)), g)
        if not (np.isfinite(step.loss) and np.isfinite(step.grad).all()):
            raise NumericalError(f"{what} gave a non-finite "
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
            self.frames.append([modelspace.from_model(x[i:i + 1], self.mean, self.std)
                                for i in range(self.slots)])
            self.frame_steps.append(t + 1)
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
    photo: np.ndarray | None = None   # HxWx3 uint8: the photo as the technique saw it (shown beside)
    alpha: np.ndarray | None = None   # HxW uint8: an alpha channel (the transparency map)
    meta: dict = field(default_factory=dict)  # the technique's own sidecar entries
    frame_steps: list = field(default_factory=list)  # the iteration of each of ``frames``


def top5(engine: Engine, x: np.ndarray) -> list[list[dict]]:
    """The model's top-5 for each image of ``x`` (any count up to the bundle's batch)."""
    size = tuple(engine.image_shape[2:])
    xs = x if tuple(x.shape[2:]) == size else modelspace.resize(x, size)
    n, batch = xs.shape[0], engine.image_shape[0]
    if n > batch:  # a diversity set: in runs of the batch
        return [t for i in range(0, n, batch) for t in top5(engine, xs[i:i + batch])]
    full = np.concatenate([xs, np.repeat(xs[:1], batch - n, axis=0)]) if n < batch else xs
    logits = engine.logits(full.astype(np.float32))[:n].astype(np.float64)
    labels = engine.bundle.labels
    out = []
    for row in logits:
        p = np.exp(row - row.max())
        p /= p.sum()
        out.append([{"class": int(i), "label": labels[i], "probability": round(float(p[i]), 6)}
                    for i in np.argsort(-p)[:5]])
    return out


def results(ctx: Context, x: np.ndarray, status: str, seconds: float,
            classify: bool = True) -> list[Result]:
    """One result per batch slot from the final (or last good) batch ``x``; ``classify=False``
    leaves the top-5 empty (a run interrupted while classifying)."""
    tops = top5(ctx.engine, x[:ctx.slots]) if classify else [[]] * ctx.slots
    seen = modelspace.from_model(ctx.photo_model()[:1], ctx.mean, ctx.std) if ctx.show_photo else None
    out = []
    for i in range(ctx.slots):
        e = ctx.extras.get(i, {})
        alpha = e.get("alpha")
        out.append(Result(modelspace.from_model(x[i:i + 1], ctx.mean, ctx.std), x[i:i + 1],
                          [f[i] for f in ctx.frames], ctx.history,
                          e.get("status", status) if status == "complete" else status, seconds,
                          len(ctx.history), tops[i], seen,
                          None if alpha is None else np.round(255 * np.clip(alpha, 0, 1)).astype(np.uint8),
                          dict(e.get("meta", {})), list(ctx.frame_steps)))
    return out
