"""The render step's numpy side as small standard-ONNX graphs, built at run time.

Every graph is float32 and uses only standard ops (opset 17): MatMul, Mul, Add, Sub, Div, Sqrt,
Sigmoid, Reshape, Squeeze, Transpose, ReduceSum, Slice, Concat, Pad, GatherElements and
Identity; no FFT op, no contrib op (which of them onnxruntime-web's WebGPU backend runs natively
is issue 24's to check).
The pieces (see docs/step-graphs.md):

- **spectrum** ``q -> u``: the parameters in the *planar* layout ``(N, 3, 2, H, W//2+1)`` (real
  parts, then imaginary parts; :func:`planar` converts from :class:`ortviz.render.param.Fourier`'s
  ``(..., 2)``), times the 1/f scale, through the orthonormal inverse real 2-D FFT in matrix form:
  the complex inverse DFT along the rows (:func:`rows_dft`: from half the rows' products),
  then the real columns from a ``(2, W//2+1, W//2+1)`` pair of matrices (:func:`cols_irfft`:
  cosines and minus sines of the columns ``0 .. W//2``, the others by symmetry; the Hermitian
  frequencies doubled, the imaginary parts of frequency 0 and of the even-``W`` Nyquist one
  dropped as ``numpy.fft.irfft`` drops them);
- **colour** ``u -> x``: ``low + span * sigmoid(C @ u)`` per pixel (:class:`ortviz.render.param.Colour`);
- **warp** ``x -> view``: ``Ry @ x @ Rxᵀ`` (the axis-aligned part of the drawn transforms, two
  interpolation matrices given per step) plus the constant fill, then the rotation as four
  bilinear taps per output pixel (a ``GatherElements`` of indices and weights given per step;
  the identity taps when the draw has no rotation);
- their exact adjoints (the transposed matrices; the rotation's transpose as a gather of the
  taps that read each pixel, :func:`ortviz.render.stepgraph.plans.transposed_taps`), and Adam.

``pre`` is the warp; ``post`` takes the model-input gradient back to the parameters, moves them
by Adam and makes the next image, so one iteration is pre, the gradient graph, post.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def planar(p: np.ndarray) -> np.ndarray:
    """``(N, C, H, Wr, 2)`` spectrum parameters -> the graphs' ``(N, C, 2, H, Wr)``."""
    return np.ascontiguousarray(np.moveaxis(p, -1, 2))


def unplanar(q: np.ndarray) -> np.ndarray:
    """The inverse of :func:`planar`."""
    return np.ascontiguousarray(np.moveaxis(q, 2, -1))


def _turns(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of ``2 pi k / n`` for integer ``k``, reduced mod ``n`` first and exact
    (0, 1, -1) at the quarter turns: a coefficient that cannot change the image (the imaginary
    part of a real frequency) then gets a gradient of exactly 0, as from ``numpy.fft``, and Adam,
    which divides each gradient by its own size, does not move it on rounding noise."""
    k = np.mod(k, n)
    a = 2 * np.pi * k / n
    c, s = np.cos(a), np.sin(a)
    quarter = (4 * k) % n == 0
    q = (4 * k // n) % 4
    c = np.where(quarter, np.choose(q, [1.0, 0.0, -1.0, 0.0]), c)
    s = np.where(quarter, np.choose(q, [0.0, 1.0, 0.0, -1.0]), s)
    return c, s


@lru_cache(maxsize=8)
def dft_matrices(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(MH, WW)``: ``u = sum_j (MH @ [re; im])_j @ WW[j]`` is ``irfft2(re + i im, s=(h, w),
    norm="ortho")``. Computed in float64, rounded once to float32."""
    ch, sh = _turns(np.outer(np.arange(h), np.arange(h)), h)
    mh = np.block([[ch, -sh], [sh, ch]]) / np.sqrt(h)
    wr = w // 2 + 1
    k = np.arange(wr)
    cw, sw = _turns(np.outer(k, np.arange(w)), w)
    c = np.where((k == 0) | ((w % 2 == 0) & (k == w // 2)), 1.0, 2.0)[:, None] / np.sqrt(w)
    ww = np.stack([c * cw, -c * sw])      # sin is 0 in column 0 and (even w) w/2: irfft drops
    return mh.astype(np.float32), ww.astype(np.float32)     # those imaginary parts


class Builder:
    """Nodes, constants and value names of one graph under construction."""

    def __init__(self, prefix: str = ""):
        self.nodes, self.consts, self.inputs, self.outputs = [], [], [], []
        self._n, self.prefix = 0, prefix

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{self.prefix}{stem}_{self._n}"

    def const(self, value, stem: str = "c", dtype=np.float32) -> str:
        name = self.name(stem)
        self.consts.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def shape(self, dims) -> str:
        return self.const(np.asarray(dims, np.int64), "shape", np.int64)

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs) -> str:
        out = out or self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def input(self, name: str, shape, dtype=F32) -> str:
        """A graph input (declared once: the warp and its adjoint share ``ry``, ``rxt``)."""
        if all(i.name != name for i in self.inputs):
            self.inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        return name

    def output(self, value: str, name: str, shape) -> str:
        self.op("Identity", value, out=name)
        self.outputs.append(helper.make_tensor_value_info(name, F32, list(shape)))
        return name

    def model(self, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, doc, self.inputs, self.outputs, self.consts)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ortviz.stepgraph")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


# -- pieces ------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def half_rows(h: int) -> np.ndarray:
    """``[C; S] / sqrt(h)`` for the rows ``0 .. h//2`` only, ``(2 (h//2 + 1), h)`` float32: row
    ``h - k`` of the DFT is row ``k`` with the sine negated, so the other rows are not computed."""
    c, s = _turns(np.outer(np.arange(h // 2 + 1), np.arange(h)), h)
    return (np.concatenate([c, s]) / np.sqrt(h)).astype(np.float32)


def _slice(b: Builder, x: str, axes, starts, ends, steps=None) -> str:
    args = [b.const(v, "slice", np.int64) for v in (starts, ends, axes)]
    if steps is not None:
        args.append(b.const(steps, "slice", np.int64))
    return b.op("Slice", x, *args)


def rows_dft(b: Builder, z: str, h: int, sign: int) -> str:
    """The orthonormal complex DFT down the rows of planar ``z`` (``(..., 2, h, wr)``, real then
    imaginary parts) with kernel ``exp(sign 2 pi i k m / h)``: ``+1`` the inverse, ``-1`` its
    transpose. One product with :func:`half_rows` gives ``C re``, ``S re``, ``C im``, ``S im``
    for rows ``0 .. h//2``; the rows ``h - k`` are the same sums with the sine's sign flipped,
    in reverse order: half the multiply-adds of the full ``(2h, 2h)`` matrix."""
    t = h // 2 + 1
    y = b.op("MatMul", b.const(half_rows(h), "rows_dft"), z)          # (..., 2, 2t, wr)
    c_re, s_re = _slice(b, y, [-3, -2], [0, 0], [1, t]), _slice(b, y, [-3, -2], [0, t], [1, 2 * t])
    c_im, s_im = _slice(b, y, [-3, -2], [1, 0], [2, t]), _slice(b, y, [-3, -2], [1, t], [2, 2 * t])
    add, sub = ("Sub", "Add") if sign > 0 else ("Add", "Sub")
    re_top, re_bot = b.op(add, c_re, s_im), b.op(sub, c_re, s_im)      # C re -+ S im, C re +- S im
    im_top, im_bot = (b.op("Add", s_re, c_im), b.op("Sub", c_im, s_re)) if sign > 0 else \
        (b.op("Sub", c_im, s_re), b.op("Add", s_re, c_im))
    parts = []
    for top, bot in ((re_top, re_bot), (im_top, im_bot)):
        rest = _slice(b, bot, [-2], [h - t], [0], [-1])                # rows h-t .. 1: rows t .. h-1
        parts.append(b.op("Concat", top, rest, axis=-2))
    return b.op("Concat", *parts, axis=-3)


def cols_irfft(b: Builder, y: str, w: int) -> str:
    """Planar row-transformed ``y`` (``(..., 2, h, wr)``) -> the real ``(..., h, w)``: the
    columns ``0 .. w//2`` by the cosine and minus-sine matrices of those columns only; column
    ``w - j`` is column ``j`` with the sine's sign flipped (half the multiply-adds)."""
    t = w // 2 + 1
    _, ww = dft_matrices(1, w)
    z = b.op("MatMul", y, b.const(np.ascontiguousarray(ww[:, :, :t]), "cols"))   # (..., 2, h, t)
    cos, sin = _slice(b, z, [-3], [0], [1]), _slice(b, z, [-3], [1], [2])
    rest = _slice(b, b.op("Sub", cos, sin), [-1], [w - t], [0], [-1])           # columns t .. w-1
    return b.op("Squeeze", b.op("Concat", b.op("Add", cos, sin), rest, axis=-1),
                b.const([-3], "axis", np.int64))


def cols_irfft_t(b: Builder, g: str, w: int, lead: int) -> str:
    """The transpose of :func:`cols_irfft`: ``g`` (``(..., 1, h, w)``, ``lead`` axes before the
    last two) -> planar ``(..., 2, h, wr)``. Column ``w - j`` of ``g`` joins column ``j``: with
    the cosines added, with the (negated) sines subtracted."""
    t = w // 2 + 1
    _, ww = dft_matrices(1, w)
    top = _slice(b, g, [-1], [0], [t])
    back = _slice(b, g, [-1], [w - 1], [t - 1], [-1])                   # g[w-1], .., g[t]: j = 1 .. w-t
    tail = 2 * t - 1 - w                                                  # 1 for even w (j = w/2)
    pads = [0] * (lead + 1) + [1] + [0] * (lead + 1) + [tail]
    r = b.op("Pad", back, b.const(pads, "pads", np.int64))
    both = b.op("Concat", b.op("Add", top, r), b.op("Sub", top, r), axis=-3)
    return b.op("MatMul", both, b.const(np.ascontiguousarray(ww[:, :, :t].transpose(0, 2, 1)), "cols_t"))


def spectrum(b: Builder, q: str, n: int, h: int, w: int, scale: np.ndarray) -> str:
    """Planar parameters ``(n, 3, 2, h, wr)`` -> the unbounded image ``(n, 3, h, w)``."""
    return cols_irfft(b, rows_dft(b, b.op("Mul", q, b.const(scale, "scale")), h, +1), w)


def spectrum_t(b: Builder, g: str, n: int, h: int, w: int, scale: np.ndarray) -> str:
    """The transpose of :func:`spectrum`: ``(n, 3, h, w)`` -> planar ``(n, 3, 2, h, wr)``."""
    z = cols_irfft_t(b, b.op("Reshape", g, b.shape([n, 3, 1, h, w])), w, 3)
    return b.op("Mul", rows_dft(b, z, h, -1), b.const(scale, "scale"))


def colour(b: Builder, u: str, n: int, h: int, w: int, c, low, span) -> tuple[str, str]:
    """``u -> (x, s)``: the model-space image and the sigmoid ``s`` its adjoint needs."""
    z = b.op("Reshape", u, b.shape([n, 3, h * w]))
    z = b.op("MatMul", b.const(c, "colour"), z)
    s = b.op("Reshape", b.op("Sigmoid", z), b.shape([n, 3, h, w]))
    x = b.op("Add", b.const(low, "low"), b.op("Mul", s, b.const(span, "span")))
    return x, s


def colour_t(b: Builder, g: str, s: str, n: int, h: int, w: int, c, span) -> str:
    """The adjoint of :func:`colour` at ``s``: ``C^T @ (g * span * s * (1 - s))``."""
    d = b.op("Mul", b.op("Mul", g, b.const(span, "span")),
             b.op("Mul", s, b.op("Sub", b.const(1.0, "one"), s)))
    z = b.op("MatMul", b.const(np.ascontiguousarray(np.asarray(c).T), "colour_t"),
             b.op("Reshape", d, b.shape([n, 3, h * w])))
    return b.op("Reshape", z, b.shape([n, 3, h, w]))


def _fill_const(value) -> np.ndarray | None:
    v = np.asarray(value, np.float32).reshape(-1)
    return None if not v.any() else (v * np.ones(3, np.float32)).reshape(1, 3, 1)


def _taps(b: Builder, y: str, rows: int, p: int, idx: str, wt: str, k: int) -> str:
    """``out[r, j] = sum_t wt[t, j] * y[r, idx[r, t * p + j]]``: one GatherElements (far faster
    than a Gather along the last axis on ONNX Runtime's CPU) with the indices given per row;
    ``k`` taps (-1: as many as ``wt`` has)."""
    z = b.op("GatherElements", b.op("Reshape", y, b.shape([rows, p])), idx, axis=1)
    z = b.op("Mul", b.op("Reshape", z, b.shape([rows, k, p])), wt)
    return b.op("ReduceSum", z, b.const([1], "axis", np.int64), keepdims=0)


def warp(b: Builder, x: str, n: int, out_hw, value) -> str:
    """``x (n, 3, h, w) -> (n, 3, oh, ow)``: the separable part, its fill, then the taps."""
    oh, ow = out_hw
    p, rows = oh * ow, 3 * n
    ry, rxt, idx, wt = b.input("ry", [oh, "h"]), b.input("rxt", ["w", ow]), \
        b.input("ridx", [rows, 4 * p], I64), b.input("rw", [4, p])
    y = b.op("MatMul", ry, b.op("MatMul", x, rxt))
    y = b.op("Reshape", y, b.shape([n, 3, p]))
    v = _fill_const(value)
    if v is not None:       # sfill, rfill: where the fill shows, made on the host with the plans
        y = b.op("Add", y, b.op("Mul", b.const(v, "value"),
                                b.op("Reshape", b.input("sfill", [oh, ow]), b.shape([1, 1, p]))))
    t = b.op("Reshape", _taps(b, y, rows, p, idx, wt, 4), b.shape([n, 3, p]))
    if v is not None:
        t = b.op("Add", t, b.op("Mul", b.const(v, "value"), b.input("rfill", [p])))
    return b.op("Reshape", t, b.shape([n, 3, oh, ow]))


def warp_t(b: Builder, g: str, n: int, out_hw) -> str:
    """The transpose of :func:`warp`'s linear part: the taps back (``tidx``/``tw``, the
    transposed taps), then ``Ryᵀ @ g @ Rx``."""
    oh, ow = out_hw
    p, rows = oh * ow, 3 * n
    ry, rxt, idx, wt = b.input("ry", [oh, "h"]), b.input("rxt", ["w", ow]), \
        b.input("tidx", [rows, "kp"], I64), b.input("tw", ["k", p])
    z = _taps(b, g, rows, p, idx, wt, -1)
    z = b.op("Reshape", z, b.shape([n, 3, oh, ow]))
    z = b.op("MatMul", z, b.op("Transpose", rxt, perm=[1, 0]))
    return b.op("MatMul", b.op("Transpose", ry, perm=[1, 0]), z)


def adam(b: Builder, q: str, m: str, v: str, g: str, lr: float, b1: float, b2: float,
         eps: float) -> tuple[str, str, str]:
    """One Adam step as :class:`ortviz.render.optim.Adam` takes it; inputs ``d1``/``d2`` are the bias
    corrections ``1 - beta^t`` of this step (shape ``[1]``)."""
    d1, d2 = b.input("d1", [1]), b.input("d2", [1])
    m2 = b.op("Add", b.op("Mul", b.const(b1, "b1"), m), b.op("Mul", b.const(1 - b1, "b1c"), g))
    v2 = b.op("Add", b.op("Mul", b.const(b2, "b2"), v),
              b.op("Mul", b.op("Mul", b.const(1 - b2, "b2c"), g), g))
    den = b.op("Add", b.op("Sqrt", b.op("Div", v2, d2)), b.const(eps, "eps"))
    step = b.op("Div", b.op("Mul", b.const(lr, "lr"), b.op("Div", m2, d1)), den)
    return b.op("Sub", q, step), m2, v2
