"""Rewrite forward ops the training build cannot differentiate into ones it can, before building.

onnxruntime-training 1.19.2 has no gradient for HardSigmoid, HardSwish or Gelu (opset 20), none
for eval-mode BatchNormalization, fails on an opset-17 LayerNormalization without its optional
outputs, and differentiates Pad in constant mode only. ``REWRITES[op_type](node, ctx)`` returns
default-domain nodes computing the same output (or ``None`` to keep the node); every new node
carries the original's metadata (the source module name the layer table reads).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ortviz.export.folding import batchnorm_scale_shift
from ortviz.export.graph import Context, ExportError, attrs, default_opset, splice


def _reduce_mean(ctx: Context, x: str, axes: list[int]):
    if default_opset(ctx.model) >= 18:
        return ctx.node("ReduceMean", [x, ctx.const(axes, np.int64)], keepdims=1)
    return ctx.node("ReduceMean", [x], axes=axes, keepdims=1)


def _f(ctx: Context, value: float) -> str:
    return ctx.const(value, np.float32)


def _hard_sigmoid(ctx: Context, x: str, alpha: float, beta: float, out: str | None = None) -> list:
    mul = ctx.node("Mul", [x, _f(ctx, alpha)])
    add = ctx.node("Add", [mul.output[0], _f(ctx, beta)])
    return [mul, add, ctx.node("Clip", [add.output[0], _f(ctx, 0.0), _f(ctx, 1.0)],
                               [out] if out else None)]


def hard_sigmoid(node, ctx: Context):
    """max(0, min(1, alpha * x + beta)) as Mul, Add, Clip."""
    a = attrs(node)
    return _hard_sigmoid(ctx, node.input[0], float(a.get("alpha", 0.2)), float(a.get("beta", 0.5)),
                         node.output[0])


def hard_swish(node, ctx: Context):
    """x * HardSigmoid(x) with alpha 1/6, beta 1/2."""
    x = node.input[0]
    gate = _hard_sigmoid(ctx, x, 1.0 / 6.0, 0.5)
    return gate + [ctx.node("Mul", [x, gate[-1].output[0]], [node.output[0]])]


def gelu(node, ctx: Context):
    """x/2 * (1 + erf(x/sqrt 2)), or the tanh approximation, from elementwise ops."""
    x = node.input[0]
    approx = attrs(node).get("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else approx
    if approx == "tanh":
        x2 = ctx.node("Mul", [x, x])
        x3 = ctx.node("Mul", [x2.output[0], x])
        c3 = ctx.node("Mul", [x3.output[0], _f(ctx, 0.044715)])
        inner = ctx.node("Add", [x, c3.output[0]])
        arg = ctx.node("Mul", [inner.output[0], _f(ctx, math.sqrt(2.0 / math.pi))])
        t = ctx.node("Tanh", [arg.output[0]])
        nodes = [x2, x3, c3, inner, arg, t]
    else:
        arg = ctx.node("Mul", [x, _f(ctx, 1.0 / math.sqrt(2.0))])
        t = ctx.node("Erf", [arg.output[0]])
        nodes = [arg, t]
    one = ctx.node("Add", [t.output[0], _f(ctx, 1.0)])
    half = ctx.node("Mul", [x, _f(ctx, 0.5)])
    return nodes + [one, half, ctx.node("Mul", [half.output[0], one.output[0]], [node.output[0]])]


def layer_normalization(node, ctx: Context):
    """(x - mean) / sqrt(var + eps) * scale + bias over the axes from ``axis`` on."""
    if any(o for o in node.output[1:]):
        raise ExportError(f"LayerNormalization {node.name!r}: its mean/inv-std outputs are used")
    x = node.input[0]
    if x not in ctx.shapes:
        raise ExportError(f"LayerNormalization {node.name!r}: input shape is not static")
    rank = len(ctx.shapes[x])
    a = attrs(node)
    axis = int(a.get("axis", -1))
    axes = list(range(axis + rank if axis < 0 else axis, rank))
    eps = float(a.get("epsilon", 1e-5))
    mean = _reduce_mean(ctx, x, axes)
    d = ctx.node("Sub", [x, mean.output[0]])
    sq = ctx.node("Mul", [d.output[0], d.output[0]])
    var = _reduce_mean(ctx, sq.output[0], axes)
    var_eps = ctx.node("Add", [var.output[0], _f(ctx, eps)])
    std = ctx.node("Sqrt", [var_eps.output[0]])
    nodes = [mean, d, sq, var, var_eps, std]
    normed = ctx.node("Div", [d.output[0], std.output[0]])
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    scaled = ctx.node("Mul", [normed.output[0], node.input[1]], None if bias else [node.output[0]])
    nodes += [normed, scaled]
    if bias:
        nodes.append(ctx.node("Add", [scaled.output[0], bias], [node.output[0]]))
    return nodes


def batch_normalization(node, ctx: Context):
    """Eval-mode BatchNormalization left after fusion: Mul + Add by per-channel constants
    (computed in float64, rounded once: the same on every CPU)."""
    x, s, b, m, v = node.input[:5]
    if not all(k in ctx.consts for k in (s, b, m, v)) or x not in ctx.shapes:
        raise ExportError(f"BatchNormalization {node.name!r} has non-constant statistics")
    scale, shift = batchnorm_scale_shift(ctx.consts[s], ctx.consts[b], ctx.consts[m], ctx.consts[v],
                                         attrs(node).get("epsilon", 1e-5))
    bshape = [-1] + [1] * (len(ctx.shapes[x]) - 2)
    mul = ctx.node("Mul", [x, ctx.const(scale.reshape(bshape).astype(np.float32))])
    return [mul, ctx.node("Add", [mul.output[0], ctx.const(shift.reshape(bshape).astype(np.float32))],
                          [node.output[0]])]


def _border(mode: str, side: str, n: int, dim: int) -> tuple[int, int, int, int]:
    """(start, end, step, copies) of the Slice giving the ``n`` entries padded on one side of an
    axis of size ``dim``: mirrored without the edge (reflect), the edge repeated, or the far end."""
    if mode == "reflect":
        return (n, 0, -1, 1) if side == "before" else (dim - 2, dim - 2 - n, -1, 1)
    if mode == "edge":
        return (0, 1, 1, n) if side == "before" else (dim - 1, dim, 1, n)
    return (dim - n, dim, 1, 1) if side == "before" else (0, n, 1, 1)  # wrap


def pad(node, ctx: Context):
    """Reflect, edge and wrap padding as Slices and a Concat per axis (constant mode stays:
    the builder differentiates it)."""
    mode = attrs(node).get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode == "constant":
        return None
    x = node.input[0]
    if x not in ctx.shapes or node.input[1] not in ctx.consts:
        raise ExportError(f"Pad {node.name!r} ({mode}): pads are not constant")
    shape = list(ctx.shapes[x])
    rank = len(shape)
    pads = [int(p) for p in ctx.consts[node.input[1]]]
    axes = (ctx.consts[node.input[3]].tolist() if len(node.input) > 3 and node.input[3]
            else list(range(rank)))
    axes = [a + rank if a < 0 else a for a in axes]
    if any(p < 0 for p in pads):
        raise ExportError(f"Pad {node.name!r}: negative pads in {mode} mode")
    if mode not in ("reflect", "edge", "wrap"):
        raise ExportError(f"Pad {node.name!r}: unknown mode {mode!r}")
    nodes, cur = [], x
    work = [(ax, pads[k], pads[k + len(axes)]) for k, ax in enumerate(axes)]
    work = [w for w in work if w[1] or w[2]]
    for k, (ax, before, after) in enumerate(work):
        dim = shape[ax]
        if mode == "reflect" and max(before, after) >= dim:
            raise ExportError(f"Pad {node.name!r}: reflect pad {max(before, after)} >= size {dim}")
        parts = [cur]
        for side, n in (("before", before), ("after", after)):
            if not n:
                continue
            start, end, step, copies = _border(mode, side, n, dim)
            sl = ctx.node("Slice", [cur, ctx.const([start], np.int64), ctx.const([end], np.int64),
                                    ctx.const([ax], np.int64), ctx.const([step], np.int64)])
            nodes.append(sl)
            piece = [sl.output[0]] * copies
            parts = piece + parts if side == "before" else parts + piece
        last = k == len(work) - 1
        cat = ctx.node("Concat", parts, [node.output[0]] if last else None, axis=ax)
        nodes.append(cat)
        cur = cat.output[0]
        shape[ax] = dim + before + after
    return nodes or [ctx.node("Identity", [x], [node.output[0]])]


REWRITES: dict[str, Callable] = {
    "HardSigmoid": hard_sigmoid,
    "HardSwish": hard_swish,
    "Gelu": gelu,
    "LayerNormalization": layer_normalization,
    "BatchNormalization": batch_normalization,
    "Pad": pad,
}


def rewrite(model) -> bool:
    """Apply REWRITES to every default-domain node once; True when anything changed."""
    return splice(model, lambda n: [REWRITES[n.op_type]] if n.domain in ("", "ai.onnx")
                  and n.op_type in REWRITES else [], keep_metadata=True)
