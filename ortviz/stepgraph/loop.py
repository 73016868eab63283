"""The render loop with its numpy side on the runtime: one step is the ``pre`` graph (the drawn
warp), the objective (the bundle's gradient graph) and the ``post`` graph (the warp's and the
parameterization's adjoints, Adam and the next image).

:func:`supports` says whether a call of :func:`ortviz.loop.optimize` can run this way: the fft
parameterization with the sigmoid squash (the default recipe of class and feature
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
    if not (isinstance(param, Colour) and type(param.inner) is Fourier and param.squash == "sigmoid"
            and type(optimizer) is Adam and optimizer.m is None and views == 1
            and not regularizers and after_step is None and param.shape[1] == 3):
        return False
    if not all(type(t) in AFFINE for t in transforms):
        return False
    hw = tuple(param.shape[2:])
    rotates = any(type(t) is tf.RandomRotate for t in transforms)
    return not rotates or (hw == tuple(out_hw) and hw[0] == hw[1])


def _sessions(engine, recipe: Recipe):
    key = ("stepgraph",) + recipe.key
    return (engine.model_session(key + ("param",), recipe.param),
            engine.model_session(key + ("pre",), recipe.warp),
            engine.model_session(key + ("post",), recipe.post))


def optimize(ctx, objective, param, transforms, optimizer, steps, p, out_hw, maximize, start):
    """The loop of :func:`ortviz.loop.optimize` with the step on the runtime (see the module);
    returns ``(params, image)`` in the numpy layout. Check :func:`supports` first."""
    hw = tuple(param.shape[2:])
    recipe = Recipe.of(param, out_hw, plans.fill_value(transforms), -1.0 if maximize else 1.0, optimizer)
    s_param, s_pre, s_post = _sessions(ctx.engine, recipe)
    q = planar(np.asarray(p, np.float32))
    m = np.zeros_like(q)
    v = np.zeros_like(q)
    x, s = s_param.run(["x", "s"], {"q": q})
    for t in range(steps):
        draw = plans.feeds(tf.sample(transforms, ctx.rng, hw, out_hw), hw, out_hw)
        if draw is None:
            raise ValueError("a transform draw the step graphs cannot take; use step='numpy'")
        view, = s_pre.run(["v"], {"x": x, "ry": draw["ry"], "rxt": draw["rxt"],
                                  "ridx": draw["ridx"], "rw": draw["rw"]})
        value, g = objective(view)
        optimizer.t += 1
        feeds = {"gv": np.asarray(g, np.float32), "s": s, "q": q, "m": m, "v": v,
                 "ry": draw["ry"], "rxt": draw["rxt"], "tidx": draw["tidx"], "tw": draw["tw"],
                 "d1": np.array([1 - optimizer.b1 ** optimizer.t], np.float32),
                 "d2": np.array([1 - optimizer.b2 ** optimizer.t], np.float32)}
        q, m, v, x, s = s_post.run(["q2", "m2", "v2", "x2", "s2"], feeds)
        ctx.report(start + t, float(value), x)
    optimizer.m, optimizer.v = unplanar(m), unplanar(v)    # as the numpy Adam would hold them
    return unplanar(q), x
