"""Fold what static shapes make constant: Shape, Size, and small constant subgraphs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ortviz.export.graph import SMALL, constants, consumers, is_standard, static_shapes

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


# Every fold below that changes stored values is computed here, in numpy float64, and rounded
# once to float32: elementwise IEEE arithmetic (+, -, *, /, sqrt) is correctly rounded on every
# x86-64 CPU whatever its vector width, so the bundle's bytes do not depend on the CPU that
# exported it. (torch's own Conv+BatchNorm fold and onnxruntime's ConvBNFusion use the CPU's
# kernels and differed in the last bits between AVX-512 Intel and AMD machines.)

def _f64(name: str, known: dict) -> np.ndarray | None:
    value = known.get(name)
    return None if value is None else np.asarray(value, dtype=np.float64)


def batchnorm_scale_shift(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNormalization as y = x * scale + shift, in float64."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + float(eps))
    return scale, np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold each eval-mode BatchNormalization that alone reads a Conv's output into that Conv's
    weights and bias (float64, rounded once). The Conv keeps its name, output and metadata; the
    BatchNorm's output is renamed to the Conv's. Returns how many were folded."""
    g = model.graph
    known = constants(model)
    for node in g.node:  # the TorchScript exporter shares equal tensors through Identity nodes
        if node.op_type == "Identity" and node.input[0] in known:
            known[node.output[0]] = known[node.input[0]]
    users = consumers(model)
    producer = {o: n for n in g.node for o in n.output if o}
    outputs = {o.name for o in g.output}
    inits = {i.name: i for i in g.initializer}
    folded = 0
    for bn in list(g.node):
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
            continue
        a = {x.name: helper.get_attribute_value(x) for x in bn.attribute}
        if a.get("training_mode", 0) or len([o for o in bn.output if o]) != 1:
            continue
        x = bn.input[0]
        conv = producer.get(x)
        if (conv is None or conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx")
                or len(users.get(x, [])) != 1 or x in outputs or conv.input[1] not in inits):
            continue
        gamma, beta, mean, var = (_f64(n, known) for n in bn.input[1:5])
        w = _f64(conv.input[1], known)
        has_bias = len(conv.input) > 2 and bool(conv.input[2])
        bias = _f64(conv.input[2], known) if has_bias else np.zeros(w.shape[:1])
        if any(v is None for v in (gamma, beta, mean, var, w, bias)):
            continue
        scale, _ = batchnorm_scale_shift(gamma, beta, mean, var, a.get("epsilon", 1e-5))
        new_w = (w * scale.reshape([-1] + [1] * (w.ndim - 1))).astype(np.float32)
        new_b = ((bias - mean) * scale + beta).astype(np.float32)
        w_name, b_name = f"{conv.input[1]}/bnfold", f"{bn.output[0]}/bnfold_bias"
        g.initializer.append(numpy_helper.from_array(new_w, w_name))
        g.initializer.append(numpy_helper.from_array(new_b, b_name))
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        y = bn.output[0]
        if y in outputs:  # keep the graph's output name: the Conv writes it
            conv.output[0] = y
        else:  # keep the Conv's output name (the layer tensor a torch-fused export has)
            for node in users.get(y, []):
                for k, name in enumerate(node.input):
                    if name == y:
                        node.input[k] = x
        g.node.remove(bn)
        folded += 1
    if folded:
        used = {i for n in g.node for i in n.input}
        keep = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        del g.value_info[:]
    return folded
