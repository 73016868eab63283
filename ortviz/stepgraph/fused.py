"""One iteration as one session run: pre, the bundle's gradient graph and post merged into one
model (:meth:`ortviz.stepgraph.Recipe.fused`), for an objective that is one of the bundle's
graphs (:func:`ortviz.loop.graph_objective` marks its objectives so).

The merged model is built once per (recipe, graph) with the graph's weights loaded from the
bundle, and kept by the engine like any session. The image never leaves the runtime between
the warp and the gradient; what comes back each iteration is the loss, the next image (the
loop reports it) and the optimizer's state.
"""

from __future__ import annotations

import numpy as np
import onnx

from .. import transforms as tf
from . import plans
from .loop import Stepper
from .models import Recipe


def _graph_and_feeds(engine, objective: str, layer: str, inputs: dict):
    """The bundle graph serving ``objective`` at ``layer`` and its inputs other than the image
    (a format-1 alias such as ``class_score`` translated to its graph's), and the constant its
    alias adds to the loss."""
    from ..objectives import ALIASES
    alias, constant = ALIASES.get(objective), 0.0
    if alias is not None:
        objective = alias.via.name
        entry = engine.bundle.graph(objective, layer)
        shape = tuple(next(v for k, v in entry.inputs.items() if k != engine.image_name))
        inputs, constant = alias.translate(inputs, shape)
    entry = engine.bundle.graph(objective, layer)
    feeds = {}
    for k, shape in entry.inputs.items():
        if k == engine.image_name:
            continue
        if k not in inputs:
            raise ValueError(f"{objective} needs input {k!r}")
        v = np.ascontiguousarray(inputs[k], dtype=np.float32)
        if v.shape != tuple(shape):
            raise ValueError(f"{objective} input {k!r} has shape {v.shape}, needs {tuple(shape)}")
        feeds[k] = v
    return entry, feeds, float(constant)


def mergeable(engine, graph) -> bool:
    """Whether the bundle graph serving ``graph`` (``(objective, layer, inputs)``) imports a
    default opset the step graphs' ops exist in as built (13 or later: ReduceSum, Squeeze and
    Slice with their axes as inputs)."""
    entry, _, _ = _graph_and_feeds(engine, *graph)
    model = onnx.load(str(engine.bundle.path_of(entry.file)), load_external_data=False)
    return any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import)


class FusedStepper(Stepper):
    """:class:`Stepper` whose iteration is one run of the merged model; ``graph`` is
    ``(objective, layer, inputs)`` of the bundle's gradient graph."""

    def __init__(self, engine, param, transforms, optimizer, p, out_hw, maximize: bool = True,
                 graph=None):
        super().__init__(engine, param, transforms, optimizer, p, out_hw, maximize)
        entry, self.extra, self.constant = _graph_and_feeds(engine, *graph)
        recipe = Recipe.of(param, out_hw, plans.fill_value(transforms), -1.0 if maximize else 1.0,
                           optimizer)
        self.loss = entry.outputs["loss"]

        def build():
            grad = onnx.load(str(engine.bundle.path_of(entry.file)))
            return recipe.fused(grad, engine.image_name, entry.outputs["grad"])
        self.s_fused = engine.model_session(("stepgraph-fused", entry.file) + recipe.key, build)
        self.inputs = {i.name for i in self.s_fused.get_inputs()}

    def step(self, rng, objective=None) -> float:
        draw = plans.feeds(tf.sample(self.transforms, rng, self.hw, self.out_hw), self.hw, self.out_hw,
                            self.q.shape[0])
        if draw is None:
            raise ValueError("a transform draw the step graphs cannot take; use step='numpy'")
        opt = self.opt
        opt.t += 1
        feeds = {"x": self.x, "s": self.s, "q": self.q, "m": self.m, "v": self.v, **self.extra,
                 **{k: v for k, v in draw.items() if k in self.inputs},
                 "d1": np.array([1 - opt.b1 ** opt.t], np.float32),
                 "d2": np.array([1 - opt.b2 ** opt.t], np.float32)}
        loss, self.q, self.m, self.v, self.x, self.s = self.s_fused.run(
            [self.loss, "q2", "m2", "v2", "x2", "s2"], feeds)
        return float(np.asarray(loss).reshape(-1)[0]) + self.constant
