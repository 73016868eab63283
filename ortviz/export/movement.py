"""Lowering rules for the gradients of ops that move data rather than compute: MaxPool,
AveragePool, Slice and Gather. None of them uses ScatterND (OpenVINO rejects it with
reduction=add): a window sum is a ConvTranspose, a selection's adjoint a Pad or a one-hot MatMul.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from ortviz.export.graph import Context, ExportError, attrs, explicit_pads


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
        if axis == rank - 1:
            return [ctx.node("MatMul", [dy, ctx.const(onehot)], [out] if out else None)]
        perm = [*(d for d in range(rank) if d != axis), axis]
        mm = emit("MatMul", [emit("Transpose", [dy], perm=perm), ctx.const(onehot)])
        nodes.append(ctx.node("Transpose", [mm], [out] if out else None,
                              perm=[perm.index(d) for d in range(rank)]))
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


def _gathered(node, ctx: Context):
    """(input shape, constant indices, dY) of a GatherGrad or GatherNDGrad(shape, indices, dY),
    or None while the shape is not folded yet."""
    shape_name, indices, dy = node.input[:3]
    if shape_name not in ctx.consts or dy not in ctx.shapes:
        return None
    if indices not in ctx.consts:
        raise ExportError(f"cannot lower {node.op_type} node {node.name}: its indices are computed "
                          "from the image (only constant indices are supported)")
    return ([int(v) for v in ctx.consts[shape_name]], np.asarray(ctx.consts[indices]).astype(np.int64),
            dy)


def gather_grad(node, ctx: Context):
    """GatherGrad(shape, indices, dY) with constant indices: the adjoint of a take."""
    known = _gathered(node, ctx)
    if known is None:
        return None
    xs, idx, dy = known
    rank = len(xs)
    axis = int(attrs(node).get("axis", 0))
    axis = axis + rank if axis < 0 else axis
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
    pads = explicit_pads(a.get("auto_pad", "NOTSET"), xs[2:], k, s, [1] * n, a.get("pads"))
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


def gather_nd_grad(node, ctx: Context):
    """GatherNDGrad(shape, indices, dY), batch_dims 0, constant indices: dY summed back onto
    the positions the tuples index, as a constant one-hot MatMul over the indexed leading axes."""
    if int(attrs(node).get("batch_dims", 0)):
        raise ExportError(f"cannot lower GatherNDGrad node {node.name}: batch_dims > 0")
    known = _gathered(node, ctx)
    if known is None:
        return None
    xs, idx, dy = known
    k = idx.shape[-1]
    tuples = idx.reshape(-1, k) % np.array(xs[:k])  # negative indices count from the end
    positions = np.ravel_multi_index(tuples.T, xs[:k])
    rows, rest = int(np.prod(xs[:k])), int(np.prod(xs[k:]))
    onehot_t = np.zeros((rows, len(positions)), np.float32)
    np.add.at(onehot_t, (positions, np.arange(len(positions))), 1.0)
    flat = ctx.node("Reshape", [dy, ctx.const([len(positions), rest], np.int64)])
    summed = ctx.node("MatMul", [ctx.const(onehot_t), flat.output[0]])
    return [flat, summed, ctx.node("Reshape", [summed.output[0], ctx.const(xs, np.int64)],
                                   [node.output[0]])]
