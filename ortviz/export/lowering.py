"""Lower onnxruntime-training's gradient ops to default-domain ONNX, then make them fast.

The driver: fold what static shapes make constant, apply the per-op rules of :mod:`.gradops`
until only standard ops remain, fold again, then the speed rewrites of :mod:`.speedups`.
"""

from __future__ import annotations

import onnx

from ortviz.export.folding import fold_step
from ortviz.export.gradops import RULES
from ortviz.export.graph import (ExportError, custom_nodes, default_opset_only, infer_shapes,
                                 is_standard, prune, splice)
from ortviz.export.speedups import SPEEDUPS, speed_up

__all__ = ["RULES", "SPEEDUPS", "lower"]


def _rules_for(node: onnx.NodeProto) -> list:
    if is_standard(node):
        return []
    rule = RULES.get(node.op_type)
    if rule is None:
        raise ExportError(f"no lowering for {node.domain or 'ai.onnx'}.{node.op_type} (node {node.name!r})")
    return [rule]


def _lower_step(model: onnx.ModelProto) -> bool:
    return splice(model, _rules_for)


def lower(model: onnx.ModelProto, outputs: list[str], speedups=None) -> onnx.ModelProto:
    """Fold and lower until only default-domain ops remain, keeping just ``outputs``; then the
    speed rewrites (``speedups``: a table like ``SPEEDUPS``, default all of it; ``{}``: none)."""
    prune(model, outputs)
    for _ in range(10000):
        model = infer_shapes(model)
        progressed = fold_step(model)
        model = infer_shapes(model)
        progressed = _lower_step(model) or progressed
        prune(model)
        if not custom_nodes(model):
            break
        if not progressed:
            n = custom_nodes(model)[0]
            raise ExportError(f"cannot lower {n.domain}.{n.op_type} (node {n.name!r}): "
                              "its input shapes are not static")
    while fold_step(model := infer_shapes(model)):
        prune(model)
    model = speed_up(model, speedups)
    default_opset_only(model)
    del model.graph.value_info[:]
    return model
