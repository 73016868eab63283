"""Speed rewrites: default-domain forms of lowered gradients that ONNX Runtime runs faster.

``SPEEDUPS[op_type]`` holds (name, rule) pairs; a rule returns replacement nodes or None (no
match). They run after the last folding on purpose: a weight transform stays a graph node on the
shared initializer (ONNX Runtime folds it when the session loads), so the bundle still stores
every weight once. Measured in docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx

from ortviz.export.graph import Context, attrs, infer_shapes, is_standard, prune, splice


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
    ConvTranspose as a GEMM and col2im per group (slow for depthwise). Strided ones are left
    to :func:`depthwise_strided_as_conv` (depthwise, 5x5 and up) or stay ConvTranspose."""
    dy, w = node.input[:2]
    ws = ctx.weights.get(w)
    a = attrs(node)
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


def depthwise_strided_as_conv(node, ctx: Context):
    """A strided depthwise ConvTranspose with a kernel of 5x5 or more (the ConvGrad of a strided
    depthwise Conv) as zeros spread between dY's pixels (a ConvTranspose of 1x1 ones per
    channel, no sums) followed by a stride-1 depthwise Conv with flipped weights, which ONNX
    Runtime runs in its blocked layout; its ConvTranspose does col2im once per channel, single
    threaded, with a cost that grows with the kernel. Smaller kernels stay ConvTranspose: 3x3
    ones measured even this way (the Conv adds two layout reorders, which weigh more on Intel),
    and a dense strided one slower (docs/benchmarks.md, issue #14)."""
    dy, w = node.input[:2]
    ws = ctx.weights.get(w)
    a = attrs(node)
    auto = a.get("auto_pad", b"NOTSET")
    if (ws is None or len(ws) != 4 or len(node.input) > 2 or dy not in ctx.shapes or a.get("output_shape")
            or (auto.decode() if isinstance(auto, bytes) else auto) not in ("", "NOTSET")):
        return None
    group, s = int(a.get("group", 1)), list(a.get("strides") or [1, 1])
    if group == 1 or ws[1] != 1 or ws[0] != group or ctx.shapes[dy][1] != group:
        return None
    k = list(a.get("kernel_shape") or ws[2:])
    if all(v == 1 for v in s) or k[0] * k[1] < 25:
        return None
    d = list(a.get("dilations") or [1, 1])
    pads, op = list(a.get("pads") or [0] * 4), list(a.get("output_padding") or [0, 0])
    begin = [d[i] * (k[i] - 1) - pads[i] for i in range(2)]
    end = [d[i] * (k[i] - 1) - pads[2 + i] + op[i] for i in range(2)]
    if min(begin + end) < 0:
        return None
    w2, nodes = _conv_weights(ctx, w, ws, group)
    ones = ctx.node("ConstantOfShape", [ctx.const([group, 1, 1, 1], np.int64)],
                    value=onnx.numpy_helper.from_array(np.ones(1, np.float32)))
    spread = ctx.node("ConvTranspose", [dy, ones.output[0]], group=group, kernel_shape=[1, 1], strides=s)
    return nodes + [ones, spread, ctx.node("Conv", [spread.output[0], w2], [node.output[0]], group=group,
                                           kernel_shape=k, dilations=d, pads=begin + end)]


def _same_value(ctx: Context, names, others) -> bool:
    return len(names) == len(others) and all(
        a == b or (a in ctx.consts and b in ctx.consts and np.array_equal(ctx.consts[a], ctx.consts[b]))
        for a, b in zip(names, others))


TINY = np.finfo(np.float32).tiny  # the smallest normal float32


def _inner_bounds(ctx: Context, lo: str, hi: str):
    """The float32 neighbours just inside constant Clip bounds [lo, hi], or None. Never a
    subnormal: hardware that flushes subnormals to zero (WebGPU, GPUs in flush-to-zero mode)
    would read ``nextafter(0)`` as 0 itself and let a unit at exactly 0 through the mask (the
    browser page's WebGPU gradients were wrong so); the smallest normal float is used instead,
    which differs only for activations below 1.2e-38."""
    if lo not in ctx.consts or hi not in ctx.consts:
        return None
    lo_v, hi_v = np.float32(ctx.consts[lo]), np.float32(ctx.consts[hi])
    if ctx.consts[lo].size != 1 or ctx.consts[hi].size != 1 or not np.isfinite([lo_v, hi_v]).all():
        return None
    inner = [np.nextafter(lo_v, np.float32(np.inf)), np.nextafter(hi_v, np.float32(-np.inf))]
    inner = [np.float32(np.copysign(TINY, v)) if v != 0 and abs(v) < TINY else v for v in inner]
    return tuple(inner) if inner[0] <= inner[1] else None


def clip_grad_mask(node, ctx: Context):
    """The builder's Clip gradient, dY * Cast(And(X >= lo, X <= hi)), in fewer ops.

    A Clip of a Conv's output (ReLU6): dY * Cast(Y == Clip(Y, lo+, hi-)), from the forward
    Clip's output Y alone, lo+ and hi- the floats just inside the bounds: 1 exactly where
    lo < Y < hi (torch's hardtanh/ReLU6 gradient; it differs from the builder's only where X
    is exactly lo or hi, and, the bounds being normal floats, where Y is a subnormal next to 0).
    The pre-activation X then has the Clip as its only consumer, so ONNX Runtime fuses Conv +
    Clip again and the forward activation needs no layout reorders.
    Any other Clip: dY * Cast(X == Y), the builder's mask exactly, in three ops instead of five.
    """
    for j in (0, 1):
        cast = ctx.producer.get(node.input[j])
        if cast is None or cast.op_type != "Cast" or attrs(cast).get("to") != onnx.TensorProto.FLOAT:
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
        y = clip.output[0]
        src = ctx.producer.get(x)
        inner = _inner_bounds(ctx, lo, hi) if src is not None and src.op_type == "Conv" else None
        if inner is not None:
            strict = ctx.node("Clip", [y, ctx.const(inner[0], np.float32), ctx.const(inner[1], np.float32)])
            eq = ctx.node("Equal", [y, strict.output[0]])
            pre = [strict]
        else:
            eq, pre = ctx.node("Equal", [x, y]), []
        mask = ctx.node("Cast", [eq.output[0]], to=onnx.TensorProto.FLOAT)
        return pre + [eq, mask, ctx.node("Mul", [node.input[1 - j], mask.output[0]], [node.output[0]])]
    return None


SPEEDUPS: dict[str, list[tuple[str, Callable]]] = {
    "ConvTranspose": [("conv-transpose-as-conv", conv_transpose_as_conv),
                      ("depthwise-strided-as-conv", depthwise_strided_as_conv)],
    "Mul": [("clip-grad-mask", clip_grad_mask)],
}


def speed_up(model: onnx.ModelProto, speedups=None) -> onnx.ModelProto:
    """One pass of the speed rewrites (default: all of ``SPEEDUPS``), then pruning."""
    speedups = SPEEDUPS if speedups is None else speedups
    model = infer_shapes(model)
    splice(model, lambda n: [r for _, r in speedups.get(n.op_type, ())] if is_standard(n) else [])
    prune(model)
    return model
