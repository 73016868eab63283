"""Lowering rules: onnxruntime-training's gradient ops as default-domain ONNX.

``RULES[op_type](node, ctx)`` returns the replacement nodes (and may add small constants
through ``ctx``), or ``None`` while a shape or constant it needs is not known yet; the driver
(:mod:`.lowering`) then folds and retries. Add an op by adding a rule. The gradients of ops that
move data (pools, Slice, Gather) live in :mod:`.movement`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ortviz.export.graph import Context, ExportError, attrs, explicit_pads
from ortviz.export.movement import average_pool_grad, gather_grad, gather_nd_grad, max_pool_grad, slice_grad


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
    pads = explicit_pads(a.get("auto_pad", "NOTSET"), xs[2:], k, s, d, a.get("pads"))
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


def conv_transpose_grad(node, ctx: Context):
    """ConvTransposeGrad's dX: the convolution of dY with the same weights, strides, pads,
    dilations and groups (ConvTranspose's weight layout [C, M/g, k...] is Conv's [M', C'/g, k...]
    with the roles of the channel axes swapped, so the weights serve as they are)."""
    dy, x, w = node.input[:3]
    if any(o for o in node.output[1:]):
        raise ExportError(f"ConvTransposeGrad node {node.name} asks for weight gradients")
    if x not in ctx.shapes or w not in ctx.shapes:
        return None
    a = attrs(node)
    n = len(ctx.shapes[x]) - 2
    if a.get("output_shape") or (a.get("auto_pad") or b"NOTSET") not in (b"NOTSET", "NOTSET", b"", ""):
        raise ExportError(f"cannot lower ConvTransposeGrad node {node.name}: output_shape/auto_pad "
                          "are not supported; export with explicit pads")
    return [ctx.node("Conv", [dy, w], [node.output[0]], group=int(a.get("group", 1)),
                     kernel_shape=list(a.get("kernel_shape") or ctx.shapes[w][2:]),
                     strides=list(a.get("strides") or [1] * n),
                     dilations=list(a.get("dilations") or [1] * n),
                     pads=list(a.get("pads") or [0] * (2 * n)))]


def leaky_relu_grad(node, ctx: Context):
    """dX = dY * (alpha + (1 - alpha) * (Y > 0)), the mask as a Cast (no Where)."""
    dy, y = node.input[:2]
    alpha = float(attrs(node).get("alpha", 0.01))
    mask = ctx.node("Greater", [y, ctx.const(0.0, np.float32)])
    cast = ctx.node("Cast", [mask.output[0]], to=onnx.TensorProto.FLOAT)
    slope = ctx.node("Mul", [cast.output[0], ctx.const(1.0 - alpha, np.float32)])
    full = ctx.node("Add", [slope.output[0], ctx.const(alpha, np.float32)])
    return [mask, cast, slope, full, ctx.node("Mul", [dy, full.output[0]], [node.output[0]])]


def fused_mat_mul(node, ctx: Context):
    """com.microsoft FusedMatMul: alpha * op(A) @ op(B), op a transpose of the last two axes."""
    a_name, b_name = node.input[:2]
    if a_name not in ctx.shapes or b_name not in ctx.shapes:
        return None
    a = attrs(node)
    if a.get("transBatchA", 0) or a.get("transBatchB", 0):
        raise ExportError(f"cannot lower FusedMatMul node {node.name}: batch transposes")
    nodes, ins = [], []
    for name, flag in ((a_name, a.get("transA", 0)), (b_name, a.get("transB", 0))):
        rank = len(ctx.shapes[name])
        if flag and rank >= 2:
            t = ctx.node("Transpose", [name], perm=[*range(rank - 2), rank - 1, rank - 2])
            nodes.append(t)
            name = t.output[0]
        ins.append(name)
    alpha = float(a.get("alpha", 1.0))
    if alpha == 1.0:
        return nodes + [ctx.node("MatMul", ins, [node.output[0]])]
    mm = ctx.node("MatMul", ins)
    return nodes + [mm, ctx.node("Mul", [mm.output[0], ctx.const(alpha, np.float32)], [node.output[0]])]


def _reduce_to(ctx: Context, x: str, shape: tuple, target: tuple, out: str) -> list:
    """Sum a broadcast result of ``shape`` back to ``target`` (the input's own shape)."""
    lead = len(shape) - len(target)
    full = (1,) * lead + tuple(target)
    axes = [i for i in range(len(shape)) if full[i] == 1 and shape[i] != 1] + list(range(lead))
    if not axes:
        return [ctx.node("Identity", [x], [out])]
    red = ctx.node("ReduceSum", [x, ctx.const(sorted(set(axes)), np.int64)], keepdims=1)
    return [red, ctx.node("Reshape", [red.output[0], ctx.const(list(target), np.int64)], [out])]


def div_grad(node, ctx: Context):
    """DivGrad(dY, A, B) -> dA = dY / B, dB = -dY * A / B^2, each summed back to its input's
    shape over the broadcast axes."""
    dy, a, b = node.input[:3]
    if any(i not in ctx.shapes for i in (dy, a, b)):
        return None
    ys = ctx.shapes[dy]
    da = node.output[0] if len(node.output) > 0 else ""
    db = node.output[1] if len(node.output) > 1 else ""
    nodes = []
    if da:
        q = ctx.node("Div", [dy, b])
        nodes += [q] + _reduce_to(ctx, q.output[0], ys, ctx.shapes[a], da)
    if db:
        q = ctx.node("Div", [dy, b])
        qa = ctx.node("Mul", [q.output[0], a])
        qab = ctx.node("Div", [qa.output[0], b])
        neg = ctx.node("Neg", [qab.output[0]])
        nodes += [q, qa, qab, neg] + _reduce_to(ctx, neg.output[0], ys, ctx.shapes[b], db)
    return nodes


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
    "AveragePoolGrad": average_pool_grad,
    "ConvTransposeGrad": conv_transpose_grad,
    "LeakyReluGrad": leaky_relu_grad,
    "FusedMatMul": fused_mat_mul,
    "SliceGrad": slice_grad,
    "GatherGrad": gather_grad,
    "GatherNDGrad": gather_nd_grad,
    "DivGrad": div_grad,
}
