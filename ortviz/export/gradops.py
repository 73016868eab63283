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


def index_adjoint(ctx: Context, dy: str, shape: tuple, axis: int, index: list[int], dim: int,
                  out: str | None = None) -> list:
    """Nodes computing dX (axis ``axis`` of size ``dim``) from dY = X.take(index, axis): the
    adjoint of selecting ``index`` along one axis. An arithmetic progression (Slice, a strided
    or reversed one) is put back in place by Pad (interleaving zeros for a stride); any other
    index list (repeats, arbitrary order) is a MatMul with a constant one-hot matrix. No
    scatter: every execution provider runs these forms."""
    rank, n = len(shape), len(index)
    nodes: list = []

    def emit(op, inputs, **kw):
        nodes.append(ctx.node(op, inputs, **kw))
        return nodes[-1].output[0]

    step = index[1] - index[0] if n > 1 else 1
    progression = n >= 1 and step != 0 and all(index[k + 1] - index[k] == step for k in range(n - 1))
    if not progression:
        onehot = np.zeros((n, dim), np.float32)
        for k, i in enumerate(index):
            onehot[k, i] += 1.0
        perm = [*(d for d in range(rank) if d != axis), axis]
        back = [perm.index(d) for d in range(rank)]
        moved = emit("Transpose", [dy], perm=perm) if axis != rank - 1 else dy
        mm = emit("MatMul", [moved, ctx.const(onehot)])
        if axis == rank - 1:
            nodes[-1].output[0] = out or nodes[-1].output[0]
            return nodes
        nodes.append(ctx.node("Transpose", [mm], [out] if out else None, perm=back))
        return nodes
    x = dy
    if step < 0:  # reversed: put dY in ascending order first
        x = emit("Slice", [x, ctx.const([-1], np.int64), ctx.const([np.iinfo(np.int64).min], np.int64),
                           ctx.const([axis], np.int64), ctx.const([-1], np.int64)])
        index, step = index[::-1], -step
    length = n
    if step > 1:  # interleave step-1 zeros after each element
        x = emit("Unsqueeze", [x, ctx.const([axis + 1], np.int64)])
        pads = [0] * (2 * (rank + 1))
        pads[rank + 1 + axis + 1] = step - 1
        x = emit("Pad", [x, ctx.const(pads, np.int64)])
        merged = list(shape)
        merged[axis] = n * step
        x = emit("Reshape", [x, ctx.const(merged, np.int64)])
        length = n * step
    begin = index[0]
    if begin + length > dim:  # only interleaved zeros lie past the end
        x = emit("Slice", [x, ctx.const([0], np.int64), ctx.const([dim - begin], np.int64),
                           ctx.const([axis], np.int64)])
        length = dim - begin
    pads = [0] * (2 * rank)
    pads[axis], pads[rank + axis] = begin, dim - begin - length
    nodes.append(ctx.node("Pad", [x, ctx.const(pads, np.int64)], [out] if out else None))
    return nodes


def _chain(ctx: Context, dy: str, shape: tuple, steps: list, out: str) -> list:
    """Apply index adjoints axis by axis: steps are (axis, index list, full size)."""
    nodes, cur, cur_shape = [], dy, list(shape)
    if not steps:
        return [ctx.node("Identity", [dy], [out])]
    for k, (axis, index, dim) in enumerate(steps):
        last = k == len(steps) - 1
        made = index_adjoint(ctx, cur, tuple(cur_shape), axis, index, dim, out if last else None)
        nodes += made
        cur = made[-1].output[0]
        cur_shape[axis] = dim
    return nodes


def slice_grad(node, ctx: Context):
    """SliceGrad(dY, shape, starts, ends[, axes, steps]): dY put back where Slice took it."""
    names = list(node.input)
    if not all(i in ctx.consts for i in names[1:] if i) or names[0] not in ctx.shapes:
        return None
    xs = [int(v) for v in ctx.consts[names[1]]]
    starts, ends = (ctx.consts[names[2]].tolist(), ctx.consts[names[3]].tolist())
    rank = len(xs)
    axes = ctx.consts[names[4]].tolist() if len(names) > 4 and names[4] else list(range(len(starts)))
    steps = ctx.consts[names[5]].tolist() if len(names) > 5 and names[5] else [1] * len(starts)
    plan = []
    for ax, b, e, st in sorted(zip(axes, starts, ends, steps)):
        ax = ax + rank if ax < 0 else ax
        index = list(range(xs[ax]))[slice(b, e, st)]
        if index != list(range(xs[ax])):
            plan.append((ax, index, xs[ax]))
    return _chain(ctx, names[0], ctx.shapes[names[0]], plan, node.output[0])


def gather_grad(node, ctx: Context):
    """GatherGrad(shape, indices, dY) with constant indices: the adjoint of a take."""
    shape_name, indices, dy = node.input[:3]
    if shape_name not in ctx.consts or dy not in ctx.shapes:
        return None
    if indices not in ctx.consts:
        raise ExportError(f"cannot lower GatherGrad node {node.name}: its indices are computed "
                          "from the image (only constant indices are supported)")
    xs = [int(v) for v in ctx.consts[shape_name]]
    rank = len(xs)
    axis = int(attrs(node).get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    idx = np.asarray(ctx.consts[indices]).astype(np.int64)
    if idx.ndim > 1:
        raise ExportError(f"cannot lower GatherGrad node {node.name}: {idx.ndim}-D indices")
    index = [int(i) + xs[axis] if i < 0 else int(i) for i in idx.reshape(-1)]
    nodes, src, src_shape = [], dy, list(ctx.shapes[dy])
    if idx.ndim == 0:  # the gathered axis was dropped: give it back with size 1
        u = ctx.node("Unsqueeze", [dy, ctx.const([axis], np.int64)])
        nodes.append(u)
        src, src_shape = u.output[0], src_shape[:axis] + [1] + src_shape[axis:]
    return nodes + _chain(ctx, src, tuple(src_shape), [(axis, index, xs[axis])], node.output[0])


def _pool_geometry(in_size: int, out_size: int, k: int, s: int, pb: int):
    """(end pad, output padding) of the ConvTranspose that sums each output's window back onto
    the input, for one spatial axis: its output, (out - 1) * s + k - pb - end + output_padding,
    must be the input size (ceil-mode windows may run past the padding; floor-mode ones may
    leave the last input rows uncovered)."""
    total = (out_size - 1) * s + k
    crop_end = max(0, total - pb - in_size)
    return crop_end, max(0, in_size - (total - pb - crop_end))


def average_pool_grad(node, ctx: Context):
    """AveragePoolGrad: dY divided by each window's element count (as the forward pool counts,
    measured by running it on ones), then summed back over the windows by a depthwise
    ConvTranspose with a kernel of ones."""
    dy, dx = node.input[0], node.output[0]
    if dy not in ctx.shapes or dx not in ctx.shapes:
        return None
    a = attrs(node)
    ys, xs = ctx.shapes[dy], ctx.shapes[dx]
    n = len(xs) - 2
    k = list(a["kernel_shape"])
    s = list(a.get("strides") or [1] * n)
    if any(d != 1 for d in a.get("dilations") or [1] * n):
        raise ExportError(f"cannot lower AveragePoolGrad node {node.name}: dilated pooling")
    pads = _explicit_pads(a.get("auto_pad", "NOTSET"), xs[2:], k, s, [1] * n, a.get("pads"))
    inv = _inverse_counts(xs[2:], a, pads)
    crop, out_pad = zip(*(_pool_geometry(xs[2 + i], ys[2 + i], k[i], s[i], pads[i]) for i in range(n)))
    scaled = ctx.node("Mul", [dy, ctx.const(inv[None, None])])
    c = xs[1]
    ones = ctx.const(np.ones([c, 1, *k], np.float32))
    return [scaled, ctx.node("ConvTranspose", [scaled.output[0], ones], [dx], group=c, kernel_shape=k,
                             strides=s, pads=list(pads[:n]) + list(crop),
                             output_padding=list(out_pad))]


def _inverse_counts(spatial, a: dict, pads) -> np.ndarray:
    """1 / (elements each output window divides by), for one channel: the forward AveragePool
    (same attributes, run by onnxruntime) on ones gives valid/count per window, and the valid
    count is the window clipped to the input."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = len(spatial)
    keep = {key: a[key] for key in ("kernel_shape", "strides", "count_include_pad", "ceil_mode") if key in a}
    node = helper.make_node("AveragePool", ["x"], ["y"], pads=list(pads), **keep)
    graph = helper.make_graph([node], "count", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ratio = sess.run(None, {"x": np.ones([1, 1, *spatial], np.float32)})[0][0, 0].astype(np.float64)
    k, s = list(a["kernel_shape"]), list(a.get("strides") or [1] * n)
    valid = np.ones(ratio.shape)
    for i in range(n):
        start = np.arange(ratio.shape[i]) * s[i] - pads[i]
        v = np.minimum(start + k[i], spatial[i]) - np.maximum(start, 0)
        valid = valid * np.maximum(v, 0).reshape([-1 if j == i else 1 for j in range(n)])
    return np.where(valid > 0, ratio / np.maximum(valid, 1), 0.0).astype(np.float32)


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
    "DivGrad": div_grad,
}
