"""Objectives: scalar functions of one tensor of the classifier, declared by technique plugins.

An objective is a small value: a name, what it reads (the logits or a feature layer), and a
function that appends ONNX nodes computing a scalar ``loss`` from that tensor. The exporter
builds one gradient graph per (objective, tensor) pair a plugin asks for; the engine feeds the
objective's extra inputs (a class weight vector, target features) at run time. Nothing here
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


def _class_score(p: Patch, logits: str, shape: tuple) -> str:
    # Weighted sum of logits. A one-hot weight selects a class; several non-zero weights mix
    # classes. A Mul (not a Gather) keeps the gradient free of scatter ops.
    w = p.input("class_weights", shape)
    return _sum_over_batch(p, p.op("Mul", logits, w))


def _class_log_softmax(p: Patch, logits: str, shape: tuple) -> str:
    w = p.input("class_weights", shape)
    return _sum_over_batch(p, p.op("Mul", p.op("LogSoftmax", logits, axis=-1), w))


def _feature_distance(p: Patch, feature: str, shape: tuple) -> str:
    # ||phi(x) - target||^2, summed over the batch.
    t = p.input("target_features", shape)
    d = p.op("Sub", feature, t)
    return _sum_over_batch(p, p.op("Mul", d, d))


def _feature_energy(p: Patch, feature: str, shape: tuple) -> str:
    # mean(phi(x)^2) / 2 per image (normalized by the layer's size), summed over the batch:
    # the mean over all elements times batch/2. No axes, so one form serves every opset.
    mean_all = p.op("ReduceMean", p.op("Mul", feature, feature), keepdims=1)
    return p.op("Mul", mean_all, p.const(shape[0] / 2.0))


CLASS_SCORE = Objective("class_score", "weighted sum of the logits (one-hot: a class's score)",
                        "logits", _class_score)
CLASS_LOG_SOFTMAX = Objective("class_log_softmax", "weighted sum of log-softmax probabilities",
                              "logits", _class_log_softmax)
FEATURE_DISTANCE = Objective("feature_distance", "squared distance to target features ||phi(x)-t||^2",
                             "layer", _feature_distance)
FEATURE_ENERGY = Objective("feature_energy", "feature energy mean(phi(x)^2)/2",
                           "layer", _feature_energy)
