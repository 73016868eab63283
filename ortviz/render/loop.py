"""The render loop every technique runs: parameterization -> transforms -> objective.

    outcome = optimize(ctx, objective, param, transforms, optimizer, steps, regularizers=())

Each step:

1. ``img = param.image(params)``: the canvas, ``(B, 3, H, W)`` in model space (any size;
   ``B`` is the bundle's batch, ``ctx.batch``);
2. ``views`` times: ``warp = transforms.sample(transforms, ctx.rng, (H, W), ctx.size)`` — the
   transform list drawn and composed, ending with a resize to the model's input size (or to
   the canvas's own, ``view_size="canvas"``: see below) —
   ``x = warp.forward(img)``, ``value, grad = objective(x)``, and the gradient is taken back
   to the canvas by ``warp.adjoint(grad)``; values and gradients are averaged over the views;
3. each regularizer ``penalty(img) -> (value, grad)`` is charged against the objective;
4. the gradient goes to the parameters through ``param.image_vjp`` and the optimizer moves
   them (``optimizer.step(g)`` returns the update to subtract; see :mod:`ortviz.render.optim`);
   ``param.project`` and then ``after_step(params, t)`` (if given) apply;
5. ``ctx.report(t, value, param.image(params))``: snapshots, progress, the NaN/Inf check and
   the last good image stay in the context (:mod:`ortviz.render.context`).

With ``Engine(step="graph")`` steps 1, 2 (its warp and adjoint) and 4 run as ONNX graphs on the
engine's provider for the recipes :func:`ortviz.render.stepgraph.supports` takes (the fft
parameterization with Adam: class and feature visualization's default), with the same random
draws, so the same picture up to float32 rounding (:mod:`ortviz.render.stepgraph`).

**The objective interface** (keep it): ``objective(x) -> (value, grad)`` where ``x`` is a
float32 ``(B, 3, h, w)`` model-space image at the model's input size ``ctx.size`` (any size
with ``view_size``) and ``grad``
is d value / d x, same shape; ``value`` a float. The loop *ascends* ``value`` (``maximize=True``,
the default) or descends it (``maximize=False``). :func:`graph_objective` makes one from a
gradient graph of the bundle (``ctx.grad``, which raises on NaN/Inf).

**Any-size recipes** (``view_size="canvas"``, or any ``(h, w)``): the views are brought to
that size instead of the model's input — the canvas's own, so a jitter is a pure shift and
Lucid's pads, crops and scales a small zoom of the whole canvas — and the objective must then
take an image of any size. ``ctx.grad``/``ctx.bind`` (so :func:`graph_objective`) do: an image
no larger than the model is resized to it through the resize's exact adjoint, a larger one is
tiled over the fixed-size graph with random shifts drawn from ``ctx.rng``. DeepDream works this
way: a 512-pixel photo stays 512 pixels, every tile of it seen at the model's own scale.

Random draws come from ``ctx.rng`` only (the initial parameters from a stream spawned off it,
so each slot's picture does not depend on the batch size): a fixed seed gives the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ortviz.render import stepgraph, transforms as tf
from ortviz.render.optim import Adam


@dataclass
class Outcome:
    params: np.ndarray       # the final parameters
    image: np.ndarray        # param.image(params): (B, 3, H, W) model space
    steps: int               # steps done (each reported to ctx as start + t)


def graph_objective(ctx, objective: str, layer: str, **inputs) -> Callable:
    """``x -> (loss, grad)`` of the bundle's gradient graph ``objective`` at ``layer``."""
    def f(x):
        step = ctx.grad(objective, layer, x, **inputs)
        return step.loss, step.grad
    f.graph = (objective, layer, inputs)    # the step graphs may run it merged (ortviz.render.stepgraph)
    return f


def optimize(ctx, objective: Callable, param, transforms: Sequence = (), optimizer=None,
             steps: int = 256, regularizers: Sequence[Callable] = (), *, params=None,
             views: int = 1, maximize: bool = True, start: int = 0,
             after_step: Callable | None = None, view_size=None,
             on_gradient: Callable | None = None) -> Outcome:
    """Run ``steps`` steps (see the module); returns the final parameters and image.

    ``params``: the starting parameters (default ``param.init`` on a stream spawned off
    ``ctx.rng``); ``start``: the number of the first step for ``ctx.report`` (octaves run the
    loop several times); ``views``: transform draws (crops) per step; ``view_size``: the size
    the views are brought to, ``None`` the model's input (``ctx.size``), ``"canvas"`` the
    canvas's own, or ``(h, w)``; the objective takes that size (see the module);
    ``on_gradient(g)``: sees each step's objective gradient on the canvas (views averaged,
    before the regularizers; a transparency map accumulates it)."""
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    opt = optimizer if optimizer is not None else Adam(0.05)
    p = param.init(ctx.rng.spawn(1)[0]) if params is None else np.asarray(params, np.float32)
    img = param.image(p)
    hw = tuple(img.shape[2:])
    out_hw = ctx.size if view_size is None else hw if view_size == "canvas" else tuple(view_size)
    if getattr(getattr(ctx, "engine", None), "step", "numpy") == "graph" and \
            stepgraph.supports(param, opt, views, regularizers, after_step, transforms, out_hw):
        p, img = stepgraph.optimize(ctx, objective, param, transforms, opt, steps, p, out_hw,
                                    maximize, start)
        return Outcome(p, img, steps)
    sign = -1.0 if maximize else 1.0          # the loop descends sign * value
    for t in range(steps):
        value, g_img = 0.0, None
        for _ in range(views):
            warp = tf.sample(transforms, ctx.rng, hw, out_hw)
            v, g = objective(warp.forward(img))
            back = warp.adjoint(np.asarray(g, np.float32))
            value += float(v) / views
            g_img = back if g_img is None else g_img + back
        if on_gradient is not None:
            on_gradient(g_img / views)
        g_desc = (sign / views) * g_img
        for penalty in regularizers:
            _, pg = penalty(img)
            g_desc = g_desc + pg
        p = param.project(p - opt.step(param.image_vjp(p, g_desc.astype(np.float32))))
        if after_step is not None:
            p = after_step(p, start + t)
        img = param.image(p)
        ctx.report(start + t, value, img)
    return Outcome(p, img, steps)
