"""The render loop with its numpy side on the runtime: one step is the ``pre`` graph (the drawn
warp), the objective (the bundle's gradient graph) and the ``post`` graph (the warp's and the
parameterization's adjoints, Adam and the next image).

:func:`supports` says whether a call of :func:`ortviz.render.loop.optimize` can run this way: the fft
or natural parameterization with the sigmoid squash (the default recipes of feature and class
visualization), Adam, one view per step, no regularizers or post-step, and transforms whose
draws are an axis-aligned warp and at most one rotation. The random draws come from
``ctx.rng`` in the same order as the numpy loop, so both make the same picture up to float32
rounding (tests/runtime/test_stepgraph.py).
"""

from __future__ import annotations

from ortviz.render import transforms as tf
from ortviz.render.optim import Adam
from ortviz.render.param import Colour, Fourier
from ortviz.render.stepgraph.fused import FusedStepper, mergeable
from ortviz.render.stepgraph.graphs import unplanar
from ortviz.render.stepgraph.stepper import Stepper

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


def optimize(ctx, objective, param, transforms, optimizer, steps, p, out_hw, maximize, start):
    """The loop of :func:`ortviz.render.loop.optimize` with the step on the runtime (see the module);
    returns ``(params, image)`` in the numpy layout. Check :func:`supports` first. An objective
    of :func:`ortviz.render.loop.graph_objective` at the graph's own size runs merged with the step
    graphs, one session run per iteration (:mod:`ortviz.render.stepgraph.fused`)."""
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
