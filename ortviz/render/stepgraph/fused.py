"""One iteration as one session run: pre, the bundle's gradient graph and post merged into one
model (:meth:`ortviz.render.stepgraph.Recipe.fused`), for an objective that is one of the bundle's
graphs (:func:`ortviz.render.loop.graph_objective` marks its objectives so).

The merged model is built once per (recipe, graph) with the graph's weights loaded from the
bundle, and kept by the engine like any session. The image never leaves the runtime between
the warp and the gradient; what comes back each iteration is the loss, the next image (the
loop reports it) and the optimizer's state. With IO binding (the engine's, on by default on GPU
providers) the state (image, sigmoid, parameters, Adam's moments) stays in two sets of device
buffers used in turn, the class weights are uploaded once, and only the draw's inputs go up and
the loss and the image come down each iteration.
"""

from __future__ import annotations

import numpy as np
import onnx

from ortviz.bundle.graphs import ALIASES
from ortviz.render import transforms as tf
from ortviz.render.stepgraph import plans
from ortviz.render.stepgraph.models import Recipe
from ortviz.render.stepgraph.stepper import Stepper


def _graph_and_feeds(engine, objective: str, layer: str, inputs: dict):
    """The bundle graph serving ``objective`` at ``layer`` and its inputs other than the image
    (a format-1 alias such as ``class_score`` translated to its graph's), and the constant its
    alias adds to the loss."""
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


STATE = (("x", "x2"), ("s", "s2"), ("q", "q2"), ("m", "m2"), ("v", "v2"))


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
        self.binding = self._bind(engine.device) if engine.io_binding else None

    def _bind(self, device: str):
        """Two sets of device buffers for the state (the run reads one, writes the other), the
        constant inputs uploaded once, the loss bound to the host (output 0)."""
        import onnxruntime as ort  # only when a step runs: the techniques load without onnxruntime

        new = ort.OrtValue.ortvalue_from_numpy
        self.device = device
        self.buffers = [{k: new(np.ascontiguousarray(getattr(self, k)), device, 0) for k, _ in STATE},
                        {k: ort.OrtValue.ortvalue_from_shape_and_type(list(np.shape(getattr(self, k))),
                                                                       np.float32, device, 0)
                         for k, _ in STATE}]
        binding = self.s_fused.io_binding()
        binding.bind_output(self.loss, "cpu")
        self.constants = {k: new(v, device, 0) for k, v in self.extra.items()}
        for k, v in self.constants.items():
            binding.bind_ortvalue_input(k, v)
        return binding

    def _run_bound(self, feeds: dict) -> float:
        read, write = self.buffers
        for k, out in STATE:
            self.binding.bind_ortvalue_input(k, read[k])
            self.binding.bind_ortvalue_output(out, write[k])
        for k, v in feeds.items():
            self.binding.bind_cpu_input(k, np.ascontiguousarray(v))
        self.s_fused.run_with_iobinding(self.binding)
        loss = self.binding.get_outputs()[0].numpy()
        self.buffers.reverse()
        self.x = np.array(write["x"].numpy())             # the loop reports the image
        return loss

    def finish(self) -> None:
        """Bring the state back from the device buffers (after the last iteration)."""
        if self.binding is not None:
            for k, _ in STATE:
                setattr(self, k, np.array(self.buffers[0][k].numpy()))

    def step(self, rng, objective=None) -> float:
        draw = plans.feeds(tf.sample(self.transforms, rng, self.hw, self.out_hw), self.hw, self.out_hw,
                            self.q.shape[0])
        if draw is None:
            raise ValueError("a transform draw the step graphs cannot take; use step='numpy'")
        opt = self.opt
        opt.t += 1
        feeds = {**{k: v for k, v in draw.items() if k in self.inputs},
                 "d1": np.array([1 - opt.b1 ** opt.t], np.float32),
                 "d2": np.array([1 - opt.b2 ** opt.t], np.float32)}
        if self.binding is not None:
            loss = self._run_bound(feeds)
        else:
            feeds.update({"x": self.x, "s": self.s, "q": self.q, "m": self.m, "v": self.v, **self.extra})
            loss, self.q, self.m, self.v, self.x, self.s = self.s_fused.run(
                [self.loss, "q2", "m2", "v2", "x2", "s2"], feeds)
        return float(np.asarray(loss).reshape(-1)[0]) + self.constant
