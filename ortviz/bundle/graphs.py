"""Graph objectives: scalar functions of one tensor of the classifier, written as ONNX nodes.

An objective is a small value: a name, what it reads (the logits or a feature layer), and a
function that appends ONNX nodes computing a scalar ``loss`` from that tensor. The exporter
builds one gradient graph per (objective, tensor) pair: always the two built-ins (``features``
at every layer, ``logits``), whose weights are run-time inputs and which serve every objective
of :mod:`ortviz.objective.algebra`, and any other a technique plugin declares. The format-1 objectives
(``class_score``, ``feature_energy``, ...) are aliases run on the built-in graphs. Nothing here
needs torch or the training build: it only writes ONNX nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from onnx import TensorProto, helper, numpy_helper

LOSS = "loss"


class Patch:
    """Collects the nodes, inputs and constants an objective appends to a graph."""

    def __init__(self, prefix: str = "objective"):
        self.prefix = prefix
        self.nodes: list = []
        self.inputs: list = []
        self.initializers: list = []
        self._n = 0

    def _fresh(self, hint: str) -> str:
        self._n += 1
        return f"{self.prefix}/{hint}_{self._n}"

    def input(self, name: str, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def const(self, value, dtype=np.float32) -> str:
        name = self._fresh("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        out = out or self._fresh(op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


Builder = Callable[[Patch, str, tuple], str]


@dataclass(frozen=True)
class Objective:
    """A scalar objective of one classifier tensor.

    ``reads`` is ``"logits"`` (the classifier output) or ``"layer"`` (any layer of the
    bundle's layer table). ``build(patch, tensor, shape)`` appends nodes and returns the
    name of the one-element tensor it computed (reduce with ``keepdims=1``: no 0-D tensors);
    ``inputs(shape)`` names the run-time inputs it adds.
    """

    name: str
    summary: str
    reads: str
    build: Builder = field(repr=False, compare=False)

    def __post_init__(self):
        if self.reads not in ("logits", "layer"):
            raise ValueError(f"objective {self.name}: reads must be 'logits' or 'layer'")

    def append_to(self, tensor: str, shape: tuple) -> Patch:
        """The objective's nodes, ending in ``loss`` of shape [1]: never a 0-D tensor, which
        some execution providers (OpenVINO) refuse, so builders keep their reduced dims."""
        patch = Patch(prefix=f"objective/{self.name}")
        loss = self.build(patch, tensor, tuple(shape))
        patch.op("Reshape", loss, patch.const([1], np.int64), out=LOSS)
        return patch


def _sum_over_batch(p: Patch, per_image: str) -> str:
    return p.op("ReduceSum", per_image, keepdims=1)


# -- the built-in objectives (bundle format 2) ---------------------------------------------------
# Two graph kinds serve every objective of ortviz's algebra (ortviz.objective.algebra): their weights are
# run-time inputs, so a new channel, neuron, direction or sum of them needs no re-export.

def _features(p: Patch, feature: str, shape: tuple) -> str:
    # L = <W, phi> + 1/2 <A, phi*phi>, summed over the batch (one W, A row per slot).
    # dL/dphi = W + A*phi: a channel, a neuron, a direction (W), an energy (A), a distance
    # ||phi - t||^2 (W = -2t, A = 2, plus sum t^2) are all of this form.
    w = p.input("layer_weights", shape)
    a = p.input("layer_curvature", shape)
    quad = p.op("Mul", p.op("Mul", feature, feature), a)
    both = p.op("Add", p.op("Mul", feature, w), p.op("Mul", quad, p.const(0.5)))
    return _sum_over_batch(p, both)


def _logits(p: Patch, logits: str, shape: tuple) -> str:
    # L = <Wz, z> + <C, log_softmax(z)>: class scores and class log-probabilities, mixed.
    # A Mul (not a Gather) keeps the gradient free of scatter ops.
    wz = p.input("class_weights", shape)
    c = p.input("log_softmax_weights", shape)
    both = p.op("Add", p.op("Mul", logits, wz),
                p.op("Mul", p.op("LogSoftmax", logits, axis=-1), c))
    return _sum_over_batch(p, both)


FEATURES = Objective("features", "<W, phi> + 1/2 <A, phi*phi> at a layer (W, A given at run time)",
                     "layer", _features)
LOGITS = Objective("logits", "<Wz, z> + <C, log_softmax(z)> (Wz, C given at run time)",
                   "logits", _logits)
BUILT_IN = (FEATURES, LOGITS)


# -- format-1 objective names, served by the built-in graphs -------------------------------------
# Techniques written for format-1 bundles ask for these by name (ctx.grad("class_score", ...)).
# Each is an alias: the built-in graph it runs on, and how its format-1 inputs become that
# graph's inputs (plus a constant added to the loss).

@dataclass(frozen=True)
class Alias:
    name: str
    summary: str
    reads: str
    via: Objective = field(repr=False)
    translate: Callable[[dict, tuple], tuple[dict, float]] = field(repr=False, compare=False)


def _zeros(shape):
    return np.zeros(shape, np.float32)


def _score_feeds(inputs, shape):
    return {"class_weights": inputs["class_weights"], "log_softmax_weights": _zeros(shape)}, 0.0


def _log_softmax_feeds(inputs, shape):
    return {"class_weights": _zeros(shape), "log_softmax_weights": inputs["class_weights"]}, 0.0


def _distance_feeds(inputs, shape):
    t = np.asarray(inputs["target_features"], np.float32)
    return ({"layer_weights": -2.0 * t, "layer_curvature": np.full(shape, 2.0, np.float32)},
            float((t.astype(np.float64) ** 2).sum()))


def _energy_feeds(inputs, shape):
    # mean(phi^2)/2 per image: A = 1 / (elements per image)
    per_image = int(np.prod(shape[1:]))
    return {"layer_weights": _zeros(shape),
            "layer_curvature": np.full(shape, 1.0 / per_image, np.float32)}, 0.0


CLASS_SCORE = Alias("class_score", "weighted sum of the logits (one-hot: a class's score)",
                    "logits", LOGITS, _score_feeds)
CLASS_LOG_SOFTMAX = Alias("class_log_softmax", "weighted sum of log-softmax probabilities",
                          "logits", LOGITS, _log_softmax_feeds)
FEATURE_DISTANCE = Alias("feature_distance", "squared distance to target features ||phi(x)-t||^2",
                         "layer", FEATURES, _distance_feeds)
FEATURE_ENERGY = Alias("feature_energy", "feature energy mean(phi(x)^2)/2",
                       "layer", FEATURES, _energy_feeds)
ALIASES = {a.name: a for a in (CLASS_SCORE, CLASS_LOG_SOFTMAX, FEATURE_DISTANCE, FEATURE_ENERGY)}


def graph_objective(obj) -> Objective:
    """The objective whose graph computes ``obj`` (itself, or an alias's built-in graph)."""
    return obj.via if isinstance(obj, Alias) else obj


def graph_name(name: str) -> str:
    """The graph objective name serving objective ``name`` (format-1 names map to built-ins)."""
    alias = ALIASES.get(name)
    return alias.via.name if alias else name
