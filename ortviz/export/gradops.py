"""Lowering rules: onnxruntime-training's gradient ops as default-domain ONNX.

``RULES[op_type](node, ctx)`` returns the replacement nodes (and may add small constants
through ``ctx``), or ``None`` while a shape or constant it needs is not known yet; the driver
(:mod:`.lowering`) then folds and retries. Add an op by adding a rule.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from .graph import Context, ExportError, attrs


def _explicit_pads(auto_pad, in_sp, k, s, d, pads):
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    n = len(in_sp)
    if auto_pad in ("", "NOTSET"):
        return list(pads) if pads else [0] * (2 * n)
    if auto_pad == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for i in range(n):
        out = -(-in_sp[i] // s[i])
        total = max((out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - in_sp[i], 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return begin + end


def conv_grad(node, ctx: Context):
    """ConvGrad's dX: the transposed convolution of dY with the same weights."""
    dy, x, w = node.input[:3]
    if any(o for o in node.output[1:]):
        raise ExportError(f"ConvGrad node {node.name} asks for weight gradients")
    if x not in ctx.shapes or w not in ctx.shapes or dy not in ctx.shapes:
        return None
    xs, ws, ys = ctx.shapes[x], ctx.shapes[w], ctx.shapes[dy]
    a = attrs(node)
    n = len(xs) - 2
    k = list(a.get("kernel_shape") or ws[2:])
    s = list(a.get("strides") or [1] * n)
    d = list(a.get("dilations") or [1] * n)
    pads = _explicit_pads(a.get("auto_pad", "NOTSET"), xs[2:], k, s, d, a.get("pads"))
    out_pad = [xs[2 + i] - ((ys[2 + i] - 1) * s[i] - pads[i] - pads[n + i] + d[i] * (k[i] - 1) + 1)
               for i in range(n)]
    if any(p < 0 or p >= max(s[i], d[i]) for i, p in enumerate(out_pad)):
        raise ExportError(f"cannot lower ConvGrad node {node.name}: output padding {out_pad}")
    return [ctx.node("ConvTranspose", [dy, w], [node.output[0]], group=int(a.get("group", 1)),
                     kernel_shape=k, strides=s, dilations=d, pads=pads, output_padding=out_pad)]


def scale(node, ctx: Context):
    """Scale multiplies (or divides, scale_down=1) by a scalar of any numeric type."""
    a = attrs(node)
    op = "Div" if a.get("scale_down", 0) else "Mul"
    factor = node.input[1]
    if factor in ctx.consts:
        return [ctx.node(op, [node.input[0], ctx.const(ctx.consts[factor], np.float32)],
                         [node.output[0]])]
    cast = ctx.node("Cast", [factor], to=onnx.TensorProto.FLOAT)
    return [cast, ctx.node(op, [node.input[0], cast.output[0]], [node.output[0]])]


def relu_grad(node, ctx: Context):
    """dX = dY * (Y > 0), the mask as a Cast and a Mul (ORT's CPU Where is several times slower)."""
    dy, y = node.input[:2]
    mask = ctx.node("Greater", [y, ctx.const(0.0, np.float32)])
    cast = ctx.node("Cast", [mask.output[0]], to=onnx.TensorProto.FLOAT)
    return [mask, cast, ctx.node("Mul", [dy, cast.output[0]], [node.output[0]])]


def sigmoid_grad(node, ctx: Context):
    dy, y = node.input[:2]
    one_minus = ctx.node("Sub", [ctx.const(1.0, np.float32), y])
    dsig = ctx.node("Mul", [y, one_minus.output[0]])
    return [one_minus, dsig, ctx.node("Mul", [dy, dsig.output[0]], [node.output[0]])]


def tanh_grad(node, ctx: Context):
    dy, y = node.input[:2]
    y2 = ctx.node("Mul", [y, y])
    one_minus = ctx.node("Sub", [ctx.const(1.0, np.float32), y2.output[0]])
    return [y2, one_minus, ctx.node("Mul", [dy, one_minus.output[0]], [node.output[0]])]


def _axis(node, ctx: Context, ref: str) -> int | None:
    if ref not in ctx.shapes:
        return None
    axis = int(attrs(node).get("axis", -1))
    return axis + len(ctx.shapes[ref]) if axis < 0 else axis


def softmax_grad(node, ctx: Context):
    """dX = Y * (dY - sum(dY * Y, axis))."""
    dy, y = node.input[:2]
    axis = _axis(node, ctx, y)
    if axis is None:
        return None
    prod = ctx.node("Mul", [dy, y])
    total = ctx.node("ReduceSum", [prod.output[0], ctx.const([axis], np.int64)], keepdims=1)
    diff = ctx.node("Sub", [dy, total.output[0]])
    return [prod, total, diff, ctx.node("Mul", [y, diff.output[0]], [node.output[0]])]


def log_softmax_grad(node, ctx: Context):
    """dX = dY - exp(Y) * sum(dY, axis), Y the log-softmax output."""
    dy, y = node.input[:2]
    axis = _axis(node, ctx, y)
    if axis is None:
        return None
    total = ctx.node("ReduceSum", [dy, ctx.const([axis], np.int64)], keepdims=1)
    p = ctx.node("Exp", [y])
    scaled = ctx.node("Mul", [p.output[0], total.output[0]])
    return [total, p, scaled, ctx.node("Sub", [dy, scaled.output[0]], [node.output[0]])]


def broadcast_gradient_args(node, ctx: Context):
    """Reduction axes of a broadcast, computed from the two (constant) shapes."""
    a_name, b_name = node.input[:2]
    if a_name not in ctx.consts or b_name not in ctx.consts:
        return None
    a, b = [int(v) for v in ctx.consts[a_name]], [int(v) for v in ctx.consts[b_name]]
    rank = max(len(a), len(b))
    a_full, b_full = [1] * (rank - len(a)) + a, [1] * (rank - len(b)) + b
    a_axes, b_axes = [], []
    for i in range(rank):
        if a_full[i] == b_full[i]:
            continue
        if a_full[i] == 1:
            a_axes.append(i)
        elif b_full[i] == 1:
            b_axes.append(i)
        else:
            raise ExportError(f"BroadcastGradientArgs {node.name}: shapes {a} and {b} do not broadcast")
    for i in range(rank - len(a)):
        if i not in a_axes:
            a_axes.append(i)
    for i in range(rank - len(b)):
        if i not in b_axes:
            b_axes.append(i)
    out = []
    for name, axes in zip(node.output, (sorted(a_axes), sorted(b_axes))):
        if name:
            ctx.model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), name))
    return out


def max_pool_grad(node, ctx: Context):
    """Scatter-add dY into zeros at the flattened argmax indices (windows may overlap)."""
    dy, indices = node.input[:2]
    pool = ctx.producer.get(indices)
    if pool is None or pool.op_type != "MaxPool":
        raise ExportError(f"MaxPoolGrad {node.name}: indices do not come from a MaxPool")
    x = pool.input[0]
    if x not in ctx.shapes:
        return None
    xs = ctx.shapes[x]
    total = int(np.prod(xs))
    zeros = ctx.const(np.zeros(1, np.float32))
    base = ctx.node("Expand", [zeros, ctx.const([total], np.int64)])
    flat_i = ctx.node("Reshape", [indices, ctx.const([-1], np.int64)])
    flat_g = ctx.node("Reshape", [dy, ctx.const([-1], np.int64)])
    scat = ctx.node("ScatterElements", [base.output[0], flat_i.output[0], flat_g.output[0]],
                    axis=0, reduction="add")
    return [base, flat_i, flat_g, scat,
            ctx.node("Reshape", [scat.output[0], ctx.const(list(xs), np.int64)], [node.output[0]])]


RULES: dict[str, Callable] = {
    "ConvGrad": conv_grad,
    "Scale": scale,
    "ReluGrad": relu_grad,
    "SigmoidGrad": sigmoid_grad,
    "TanhGrad": tanh_grad,
    "SoftmaxGrad_13": softmax_grad,
    "SoftmaxGrad": softmax_grad,
    "LogSoftmaxGrad_13": log_softmax_grad,
    "LogSoftmaxGrad": log_softmax_grad,
    "BroadcastGradientArgs": broadcast_gradient_args,
    "MaxPoolGrad": max_pool_grad,
}
