"""Bring any classifier's ONNX graph to the canonical forward graph a bundle ships.

Canonical means: one image input with a static shape, one logits output, default-domain ops,
eval-mode BatchNormalization folded into convolutions, shape arithmetic (the TorchScript
exporter's dynamic "same" padding) folded to constants, Pads folded into Conv, Dropout/Identity
removed, and the ops the training build cannot differentiate rewritten (:mod:`.rewrites`).
"""

from __future__ import annotations

import os
import tempfile

import onnx
import onnxruntime as ort
from onnx import version_converter

from ortviz.errors import first_line
from ortviz.export.folding import fold_batchnorm, fold_step
from ortviz.export.graph import (ExportError, custom_nodes, default_opset, default_opset_only,
                                 infer_shapes, prune, static_shapes)
from ortviz.export.layers import SCOPE_KEY, module_scope
from ortviz.export.rewrites import rewrite

MIN_OPSET = 17  # lowered forms use ScatterElements(reduction=add), opset 16+
# onnxruntime-training 1.19.2 reads IR versions up to 10 (opsets up to 21): files written by a
# newer onnx package (IR 11+) are brought down to it.
MAX_IR, MAX_OPSET = 10, 21


def _check_classifier(model: onnx.ModelProto) -> tuple[str, str]:
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise ExportError(f"not an image classifier: expected one input, found {len(inputs)} "
                          f"({', '.join(i.name for i in inputs) or 'none'})")
    dims = inputs[0].type.tensor_type.shape.dim
    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 4:
        raise ExportError(f"not an image classifier: input {inputs[0].name!r} is not a 4-D float "
                          "tensor (N, C, H, W)")
    if len(g.output) != 1:
        raise ExportError(f"not an image classifier: expected one output (the logits), found "
                          f"{len(g.output)} ({', '.join(o.name for o in g.output)})")
    return inputs[0].name, g.output[0].name


def fixed_size(model: onnx.ModelProto) -> int | None:
    """The input's height and width when the model fixes them (square), else None."""
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    if len(dims) != 4:
        return None
    h, w = (d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims[2:])
    if h is None or w is None:
        return None
    if h != w:
        raise ExportError(f"input {model.graph.input[0].name!r} has the fixed non-square size {h}x{w}; "
                          "ortviz bundles are square (export the model with a dynamic or square input)")
    return h


def _set_input_shape(model: onnx.ModelProto, name: str, shape: tuple[int, ...]) -> None:
    for vi in model.graph.input:
        if vi.name != name:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, v in zip(dims, shape):
            fixed = d.dim_value if d.HasField("dim_value") else None
            if fixed not in (None, 0) and fixed != v:
                raise ExportError(f"input {name!r} has fixed size {[x.dim_value for x in dims]}, "
                                  f"cannot export at {list(shape)}")
            d.Clear()
            d.dim_value = v
    # Stale intermediate shapes (from a dynamic export) must not contradict the new ones.
    del model.graph.value_info[:]
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")


# onnxruntime's basic-level passes that compute new tensor values run the CPU's own kernels,
# whose last bits differ between instruction sets: they are off, and ortviz folds in float64
# itself (folding.fold_batchnorm, folding.fold_step). What stays on only moves, renames or
# removes (Pad+Conv, Dropout, Identity, Unsqueeze/Slice/Cast elimination, ...).
VALUE_CHANGING_PASSES = ["ConstantFolding", "ConvBNFusion", "ConvAddFusion", "ConvMulFusion",
                         "MatMulScaleFusion", "DivMulFusion", "ConstantSharing"]


def _ort_basic(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's basic (standard-ops-only) optimizations that change no stored value:
    Pad+Conv fusion, removal of Dropout/Identity and no-op nodes."""

    with tempfile.TemporaryDirectory(prefix="ortviz-canon-") as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        onnx.save_model(model, src, save_as_external_data=True, location="in.bin")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.log_severity_level = 3  # not its notes on initializers the passes left unused
        so.optimized_model_filepath = dst
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                    "out.bin")
        so.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        try:
            ort.InferenceSession(src, so, providers=["CPUExecutionProvider"],
                                 disabled_optimizers=VALUE_CHANGING_PASSES)
        except Exception as exc:
            raise ExportError(f"ONNX Runtime cannot load the model: {first_line(exc)}") from None
        out = onnx.load_model(dst, load_external_data=True)
    return out


def canonicalize(model: onnx.ModelProto, size: int, batch: int = 1,
                 channels: int | None = None) -> tuple[onnx.ModelProto, str, str]:
    """Returns (canonical model, input name, logits name)."""
    input_name, output_name = _check_classifier(model)
    if custom_nodes(model):
        n = custom_nodes(model)[0]
        raise ExportError(f"unsupported op {n.domain}.{n.op_type} (node {n.name!r}): "
                          "only default-domain ONNX ops are accepted")
    if any(n.op_type in ("Loop", "If", "Scan") for n in model.graph.node):
        n = next(n for n in model.graph.node if n.op_type in ("Loop", "If", "Scan"))
        raise ExportError(f"unsupported op {n.op_type} (node {n.name!r}): dynamic control flow "
                          "has no input gradient here")
    opset = default_opset(model)
    if opset < MIN_OPSET or opset > MAX_OPSET:
        target = MIN_OPSET if opset < MIN_OPSET else MAX_OPSET
        try:
            model = version_converter.convert_version(model, target)
        except Exception as exc:
            raise ExportError(f"cannot convert the model from opset {opset} to {target}: "
                              f"{first_line(exc)}") from None
    model.ir_version = min(model.ir_version, MAX_IR)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    c = channels or next((d.dim_value for d in [dims[1]] if d.HasField("dim_value")), 3)
    _set_input_shape(model, input_name, (batch, c, size, size))
    fold_batchnorm(model)  # before the scopes: the Conv keeps its module name and output
    scopes = {o: sc for n in model.graph.node if (sc := module_scope(n)) for o in n.output if o}
    while fold_step(model := infer_shapes(model)):  # the pads Pad+Conv fusion needs constant
        pass
    model = _ort_basic(model)
    for node in model.graph.node:  # the optimizer drops exporter metadata; keep module names
        sc = next((scopes[o] for o in node.output if o in scopes), None)
        if sc:
            entry = node.metadata_props.add()
            entry.key, entry.value = SCOPE_KEY, sc
    while fold_step(model := infer_shapes(model)):
        pass
    if rewrite(model):  # ops the training build cannot differentiate
        model = infer_shapes(model)
    prune(model, [output_name])
    default_opset_only(model)
    model = infer_shapes(model)
    shapes = static_shapes(model)
    if output_name not in shapes or len(shapes[output_name]) != 2:
        raise ExportError(f"not an image classifier: output {output_name!r} has shape "
                          f"{shapes.get(output_name, 'unknown')}, expected (batch, classes)")
    missing = [o for n in model.graph.node for o in n.output if o and o not in shapes]
    if missing:
        raise ExportError(f"shape of {missing[0]!r} is not static at input size {size}")
    return model, input_name, output_name
