"""Lower onnxruntime-training's gradient ops to default-domain ONNX, then make them fast.

A table of small per-op rules: ``RULES[op_type](node, ctx)`` returns the replacement nodes (and
may add small constants through ``ctx``), or ``None`` while a shape or constant it needs is not
known yet; the driver then folds and retries. Add an op by adding a rule.

After the last folding, a second table, ``SPEEDUPS``, rewrites default-domain forms into ones
ONNX Runtime runs faster (measured in docs/benchmarks.md). It runs after folding on purpose: a
weight transform stays a graph node on the shared initializer (ONNX Runtime folds it when the
session loads), so the bundle still stores every weight once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .folding import fold_step
from .graph import (ExportError, constants, consumers, custom_nodes, infer_shapes, is_standard, prune,
                    static_shapes)


class Context:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.shapes = static_shapes(model)
        self.consts = constants(model, max_elems=1 << 16)
        self._n = 0
        self.producer = {o: n for n in model.graph.node for o in n.output if o}
        self.consumers = consumers(model)
        self.weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
        self._taken = (set(self.producer) | {i.name for i in model.graph.initializer}
                       | {i.name for i in model.graph.input})

    def fresh(self, hint: str) -> str:
        """A new value name, never one the graph already uses (passes run more than once)."""
        while True:
            self._n += 1
            name = f"lowered/{hint}_{self._n}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def const(self, value, dtype=None) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh("c")
        self.model.graph.initializer.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs):
        outputs = outputs or [self.fresh(op)]
        return helper.make_node(op, inputs, outputs, name=outputs[0], **attrs)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


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
    a = _attrs(node)
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
    a = _attrs(node)
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
    axis = int(_attrs(node).get("axis", -1))
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


# -- speed rewrites ---------------------------------------------------------------------------
# SPEEDUPS[op_type] holds (name, rule) pairs; a rule returns replacement nodes or None (no match).
# Only default-domain nodes reach them; what they replace is pruned afterwards.

def _conv_weights(ctx: Context, w: str, ws: tuple, group: int) -> tuple[str, list]:
    """ConvTranspose weights [C, M/g, k...] as those of the same-stride-1 Conv: per group the
    two channel axes swap and the kernel is flipped. Graph nodes on the initializer (Reshape,
    Transpose, Slice with step -1), folded by ONNX Runtime at session load."""
    n = len(ws) - 2
    c_g, m_g = ws[0] // group, ws[1]
    out, nodes = w, []
    if group == 1:
        if c_g > 1 and m_g > 1:
            nodes.append(ctx.node("Transpose", [out], perm=[1, 0, *range(2, 2 + n)]))
        elif c_g > 1 or m_g > 1:
            nodes.append(ctx.node("Reshape", [out, ctx.const([m_g, c_g, *ws[2:]], np.int64)]))
    elif c_g > 1 and m_g > 1:
        r = ctx.node("Reshape", [out, ctx.const([group, c_g, m_g, *ws[2:]], np.int64)])
        t = ctx.node("Transpose", [r.output[0]], perm=[0, 2, 1, *range(3, 3 + n)])
        nodes += [r, t, ctx.node("Reshape", [t.output[0],
                                             ctx.const([group * m_g, c_g, *ws[2:]], np.int64)])]
    elif c_g > 1 or m_g > 1:
        nodes.append(ctx.node("Reshape", [out, ctx.const([group * m_g, c_g, *ws[2:]], np.int64)]))
    out = nodes[-1].output[0] if nodes else out
    axes = [2 + i for i in range(n) if ws[2 + i] > 1]
    if axes:
        k = len(axes)
        flip = ctx.node("Slice", [out, ctx.const([-1] * k, np.int64),
                                  ctx.const([np.iinfo(np.int64).min] * k, np.int64),
                                  ctx.const(axes, np.int64), ctx.const([-1] * k, np.int64)])
        nodes.append(flip)
        out = flip.output[0]
    return out, nodes


def conv_transpose_as_conv(node, ctx: Context):
    """Stride-1 ConvTranspose with constant weights (ConvGrad's dX) as a Conv with transposed,
    flipped weights: ONNX Runtime runs Conv in its blocked NCHWc layout with fused kernels,
    ConvTranspose as a GEMM and col2im per group (slow for depthwise). Strided ones stay:
    every stride-1 form of them measured slower (docs/benchmarks.md)."""
    dy, w = node.input[:2]
    ws = ctx.weights.get(w)
    a = _attrs(node)
    n = len(ws) - 2 if ws else 0
    auto = a.get("auto_pad", b"NOTSET")
    if (ws is None or a.get("output_shape") or any(v != 1 for v in a.get("strides") or [1] * n)
            or (auto.decode() if isinstance(auto, bytes) else auto) not in ("", "NOTSET")):
        return None
    k = list(a.get("kernel_shape") or ws[2:])
    d = list(a.get("dilations") or [1] * n)
    pads = list(a.get("pads") or [0] * (2 * n))
    op = list(a.get("output_padding") or [0] * n)
    begin = [d[i] * (k[i] - 1) - pads[i] for i in range(n)]
    end = [d[i] * (k[i] - 1) - pads[n + i] + op[i] for i in range(n)]
    if min(begin + end) < 0:
        return None
    group = int(a.get("group", 1))
    w2, nodes = _conv_weights(ctx, w, ws, group)
    bias = [node.input[2]] if len(node.input) > 2 and node.input[2] else []
    return nodes + [ctx.node("Conv", [dy, w2] + bias, [node.output[0]], group=group,
                             kernel_shape=k, dilations=d, pads=begin + end)]


def _same_value(ctx: Context, names, others) -> bool:
    return len(names) == len(others) and all(
        a == b or (a in ctx.consts and b in ctx.consts and np.array_equal(ctx.consts[a], ctx.consts[b]))
        for a, b in zip(names, others))


def clip_grad_mask(node, ctx: Context):
    """The builder's Clip gradient, dY * Cast(And(X >= lo, X <= hi)), as dY * Cast(X == Y)
    with Y the forward Clip(X, lo, hi): the same mask in three ops instead of five."""
    for j in (0, 1):
        cast = ctx.producer.get(node.input[j])
        if cast is None or cast.op_type != "Cast" or _attrs(cast).get("to") != onnx.TensorProto.FLOAT:
            continue
        both = ctx.producer.get(cast.input[0])
        if both is None or both.op_type != "And":
            continue
        cmp = {p.op_type: p for p in (ctx.producer.get(i) for i in both.input) if p is not None}
        ge, le = cmp.get("GreaterOrEqual"), cmp.get("LessOrEqual")
        if ge is None or le is None or ge.input[0] != le.input[0]:
            continue
        x, lo, hi = ge.input[0], ge.input[1], le.input[1]
        clip = next((c for c in ctx.consumers.get(x, []) if c.op_type == "Clip"
                     and _same_value(ctx, c.input[1:3], [lo, hi])), None)
        if clip is None:
            continue
        eq = ctx.node("Equal", [x, clip.output[0]])
        mask = ctx.node("Cast", [eq.output[0]], to=onnx.TensorProto.FLOAT)
        return [eq, mask, ctx.node("Mul", [node.input[1 - j], mask.output[0]], [node.output[0]])]
    return None


SPEEDUPS: dict[str, list[tuple[str, Callable]]] = {
    "ConvTranspose": [("conv-transpose-as-conv", conv_transpose_as_conv)],
    "Mul": [("clip-grad-mask", clip_grad_mask)],
}


def speed_up(model: onnx.ModelProto, speedups=None) -> onnx.ModelProto:
    """One pass of the speed rewrites (default: all of ``SPEEDUPS``), then pruning."""
    speedups = SPEEDUPS if speedups is None else speedups
    model = infer_shapes(model)
    ctx = Context(model)
    nodes = []
    for node in list(model.graph.node):
        new = None
        if is_standard(node):
            for _, rule in speedups.get(node.op_type, ()):
                new = rule(node, ctx)
                if new is not None:
                    break
        nodes.extend(new if new is not None else [node])
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    prune(model)
    return model


def _lower_step(model: onnx.ModelProto) -> bool:
    ctx = Context(model)
    changed = False
    nodes = []
    for node in list(model.graph.node):
        if is_standard(node):
            nodes.append(node)
            continue
        rule = RULES.get(node.op_type)
        if rule is None:
            raise ExportError(f"no lowering for {node.domain}.{node.op_type} (node {node.name!r})")
        new = rule(node, ctx)
        if new is None:
            nodes.append(node)
            continue
        nodes.extend(new)
        changed = True
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return changed


def _set_default_opset_only(model: onnx.ModelProto) -> None:
    keep = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(keep)


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
    _set_default_opset_only(model)
    del model.graph.value_info[:]
    return model
