"""The render loop with its numpy side on the runtime: one step is the ``pre`` graph (the drawn
warp), the objective (the bundle's gradient graph) and the ``post`` graph (the warp's and the
parameterization's adjoints, Adam and the next image).

:func:`supports` says whether a call of :func:`ortviz.loop.optimize` can run this way: the fft
or natural parameterization with the sigmoid squash (the default recipes of feature and class
visualization), Adam, one view per step, no regularizers or post-step, and transforms whose
draws are an axis-aligned warp and at most one rotation. The random draws come from
``ctx.rng`` in the same order as the numpy loop, so both make the same picture up to float32
rounding (tests/runtime/test_stepgraph.py).
"""

from __future__ import annotations

import numpy as np

from .. import transforms as tf
from ..optim import Adam
from ..param import Colour, Fourier
from . import plans
from .graphs import planar, unplanar
from .models import Recipe


# the transforms whose draws compose to a map the warp graphs take (see supports)
AFFINE = (tf.Pad, tf.RandomCrop, tf.RandomScale, tf.RandomRotate, tf.Jitter, tf.Zoom, tf.RandomBox)


def supports(param, optimizer, views: int, regularizers, after_step, transforms, out_hw) -> bool:
    """Whether :func:`optimize` runs this recipe (see the module). A rotation is taken on a
    square canvas seen at its own size (then every draw is an axis-aligned warp and a rotation
    about the centre)."""
    if not (isinstance(param, Colour) and isinstance(param.inner, Fourier) and param.squash == "sigmoid"
            and type(optimizer) is Adam and optimizer.m is None and views == 1
            and not regularizers and after_step is None and param.shape[1] == 3):
        return False
    if not all(type(t) in AFFINE for t in transforms):
        return False
    hw = tuple(param.shape[2:])
    rotates = any(type(t) is tf.RandomRotate for t in transforms)
    return not rotates or (hw == tuple(out_hw) and hw[0] == hw[1])


class Stepper:
    """The state of a run on the step graphs: the planar parameters, Adam's moments, the image
    and its sigmoid, all as the graphs hand them over. ``step`` runs one iteration."""

    def __init__(self, engine, param, transforms, optimizer, p, out_hw, maximize: bool = True):
        self.hw, self.out_hw = tuple(param.shape[2:]), tuple(out_hw)
        self.transforms, self.opt = transforms, optimizer
        recipe = Recipe.of(param, out_hw, plans.fill_value(transforms), -1.0 if maximize else 1.0,
                           optimizer)
        key = ("stepgraph",) + recipe.key
        self.s_pre = engine.model_session(key + ("pre",), recipe.warp)
        self.s_post = engine.model_session(key + ("post",), recipe.post)
        self.pre_in = {i.name for i in self.s_pre.get_inputs()}
        self.q = planar(np.asarray(p, np.float32))
        self.m, self.v = np.zeros_like(self.q), np.zeros_like(self.q)
        self.x, self.s = engine.model_session(key + ("param",), recipe.param).run(["x", "s"], {"q": self.q})

    def step(self, rng, objective) -> float:
        """Draw the transforms from ``rng``, run pre, ``objective``, post; the objective's value."""
        draw = plans.feeds(tf.sample(self.transforms, rng, self.hw, self.out_hw), self.hw, self.out_hw,
                            self.q.shape[0])
        if draw is None:
            raise ValueError("a transform draw the step graphs cannot take; use step='numpy'")
        pre = {k: v for k, v in draw.items() if k in self.pre_in}
        view, = self.s_pre.run(["view"], {"x": self.x, **pre})
        value, g = objective(view)
        opt = self.opt
        opt.t += 1
        feeds = {"gv": np.asarray(g, np.float32), "s": self.s, "q": self.q, "m": self.m, "v": self.v,
                 **{k: draw[k] for k in ("ry", "rxt", "tidx", "tw")},
                 "d1": np.array([1 - opt.b1 ** opt.t], np.float32),
                 "d2": np.array([1 - opt.b2 ** opt.t], np.float32)}
        self.q, self.m, self.v, self.x, self.s = self.s_post.run(["q2", "m2", "v2", "x2", "s2"], feeds)
        return float(value)

    def finish(self) -> None:
        """After the last step: the state on the host (see :class:`FusedStepper`)."""

    def params(self) -> np.ndarray:
        """The parameters in :class:`ortviz.param.Fourier`'s layout."""
        return unplanar(self.q)


def optimize(ctx, objective, param, transforms, optimizer, steps, p, out_hw, maximize, start):
    """The loop of :func:`ortviz.loop.optimize` with the step on the runtime (see the module);
    returns ``(params, image)`` in the numpy layout. Check :func:`supports` first. An objective
    of :func:`ortviz.loop.graph_objective` at the graph's own size runs merged with the step
    graphs, one session run per iteration (:mod:`ortviz.stepgraph.fused`)."""
    from .fused import FusedStepper, mergeable
    graph = getattr(objective, "graph", None)
    if graph is not None and tuple(out_hw) == tuple(ctx.engine.image_shape[2:]) \
            and param.shape[0] == ctx.engine.image_shape[0] and mergeable(ctx.engine, graph):
        run = FusedStepper(ctx.engine, param, transforms, optimizer, p, out_hw, maximize, graph)
    else:
        run = Stepper(ctx.engine, param, transforms, optimizer, p, out_hw, maximize)
    for t in range(steps):
        value = run.step(ctx.rng, objective)
        ctx.report(start + t, value, run.x)
    run.finish()
    optimizer.m, optimizer.v = unplanar(run.m), unplanar(run.v)    # as the numpy Adam holds them
    return run.params(), run.x
