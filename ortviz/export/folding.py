"""Fold what static shapes make constant: Shape, Size, and small constant subgraphs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from .graph import SMALL, constants, is_standard, static_shapes

_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
               "Multinomial", "Bernoulli", "Constant"}


def _shape_value(node: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    attrs = {a.name: a.i for a in node.attribute}
    rank = len(shape)
    start = attrs.get("start", 0)
    end = attrs.get("end", rank)
    start = max(0, start + rank if start < 0 else start)
    end = min(rank, end + rank if end < 0 else end)
    return np.array(shape[start:end], dtype=np.int64)


def _replace_with_constants(model: onnx.ModelProto, node: onnx.NodeProto, values: list) -> None:
    g = model.graph
    for name, value in zip(node.output, values):
        if name:
            g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    g.node.remove(node)


def fold_step(model: onnx.ModelProto) -> bool:
    """One sweep of folding; True when anything changed. Call until it returns False."""
    shapes = static_shapes(model)
    known = constants(model, max_elems=SMALL)
    changed = False
    for node in list(model.graph.node):
        if not is_standard(node) or node.op_type in _NEVER_FOLD:
            continue
        if node.op_type in ("Shape", "Size") and node.input[0] in shapes:
            shape = shapes[node.input[0]]
            value = (_shape_value(node, shape) if node.op_type == "Shape"
                     else np.array(int(np.prod(shape)), dtype=np.int64))
            _replace_with_constants(model, node, [value])
            changed = True
            continue
        ins = [i for i in node.input if i]
        if not ins or not all(i in known for i in ins):
            continue
        if any(o in shapes and int(np.prod(shapes[o])) > SMALL for o in node.output):
            continue
        try:
            values = ReferenceEvaluator(node).run(None, {i: known[i] for i in ins})
        except Exception:  # not evaluable here: leave it for ONNX Runtime
            continue
        if any(np.asarray(v).size > SMALL for v in values):
            continue
        _replace_with_constants(model, node, values)
        changed = True
    return changed
