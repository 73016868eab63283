"""Bilinear sampling of an image under a coordinate map, with its exact transpose.

A :class:`Warp` maps an ``(h, w)`` image to ``out_hw``: output pixel ``(i, j)`` reads the input
at ``matrix @ (i, j, 1)`` (pixel centres at integer coordinates), interpolated bilinearly from
its four neighbours. Where a neighbour falls outside the input the boundary ``mode`` decides:
``edge`` (clamp), ``reflect`` (mirror, edge not repeated), ``wrap`` (circular) or ``constant``
(the neighbour reads ``value``, per channel). ``forward`` is that affine map; ``adjoint`` is
the exact transpose of its linear part (the constant adds no gradient).

The sampling plan (indices and weights) is computed once per (sizes, matrix, mode) and kept
in a small cache. Whole-pixel shifts (a jitter, a crop inside the image) are exact copies:
``np.roll`` in ``wrap`` mode when the size is kept, a slice when the box lies inside the input
(any mode), at any image size without an interpolation matrix. Other axis-aligned maps (pads,
scales, resizes) use two interpolation matrices, applied as matrix products; others use four
gathers forward and, back, a scatter of the same taps (``bincount``): no transposed plan to
build, so a rotation at a size seen once (DeepDream's canvases) costs no more than a cached one.
Float32 in, float32 out (float64 in, float64 out: the tests' adjoint checks).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

MODES = ("edge", "reflect", "wrap", "constant")


def _fold(i: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer sample positions folded into 0..n-1, and where they are valid (constant)."""
    if mode == "edge":
        return np.clip(i, 0, n - 1), None
    if mode == "wrap":
        return np.mod(i, n), None
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(i), None
        period = 2 * (n - 1)
        j = np.mod(i, period)
        return np.where(j >= n, period - j, j), None
    return np.clip(i, 0, n - 1), (i >= 0) & (i < n)


def _taps(coord: np.ndarray, n: int, mode: str):
    """Two bilinear taps per coordinate: [(index, weight), (index, weight)]."""
    i0 = np.floor(coord)
    f = coord - i0
    i0 = i0.astype(np.int64)
    out = []
    for i, wt in ((i0, 1.0 - f), (i0 + 1, f)):
        j, valid = _fold(i, n, mode)
        out.append((j, wt if valid is None else wt * valid))
    return out


def _matrix_1d(n_in: int, n_out: int, scale: float, offset: float, mode: str) -> np.ndarray:
    """(n_out, n_in) float32: output k reads input coordinate ``scale * k + offset``."""
    m = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    for j, wt in _taps(scale * rows + offset, n_in, mode):
        np.add.at(m, (rows, j), wt)
    return m.astype(np.float32)


class _Separable:
    def __init__(self, in_hw, out_hw, a, mode):
        self.my = _matrix_1d(in_hw[0], out_hw[0], a[0, 0], a[0, 2], mode)
        self.mx = _matrix_1d(in_hw[1], out_hw[1], a[1, 1], a[1, 2], mode)
        self.mx_t = np.ascontiguousarray(self.mx.T)
        self.my_t = np.ascontiguousarray(self.my.T)
        self.fill = 1.0 - np.outer(self.my.sum(1), self.mx.sum(1)) if mode == "constant" else None

    @staticmethod
    def _apply(x, left, right_t):
        """``left @ x @ right_t`` on the last two axes as two single matrix products (a
        broadcast stacked matmul is many times slower)."""
        lead, (h, w) = x.shape[:-2], x.shape[-2:]
        k = int(np.prod(lead)) if lead else 1
        y = x.reshape(k * h, w) @ right_t.astype(x.dtype, copy=False)          # (k*h, ow)
        ow = y.shape[1]
        y = y.reshape(k, h, ow).transpose(1, 0, 2).reshape(h, k * ow)
        z = left.astype(x.dtype, copy=False) @ y                             # (oh, k*ow)
        return np.ascontiguousarray(z.reshape(-1, k, ow).transpose(1, 0, 2)).reshape(lead + (z.shape[0], ow))

    def forward(self, x):
        return self._apply(x, self.my, self.mx_t)

    def adjoint(self, g):
        return self._apply(g, self.my_t, self.mx)


def _inside(in_hw, out_hw, oy: int, ox: int) -> bool:
    return 0 <= oy and oy + out_hw[0] <= in_hw[0] and 0 <= ox and ox + out_hw[1] <= in_hw[1]


class _Shift:
    """Output ``(i, j)`` reads input ``(i + oy, j + ox)``, whole pixels: a circular shift
    (``wrap``, same size) or a box inside the input (any mode). A copy both ways, no weights."""

    fill = None

    def __init__(self, in_hw, out_hw, oy: int, ox: int):
        self.in_hw, self.out_hw, self.oy, self.ox = in_hw, out_hw, oy, ox
        self.inside = _inside(in_hw, out_hw, oy, ox)

    @staticmethod
    def applies(in_hw, out_hw, a, mode) -> tuple[int, int] | None:
        """The whole-pixel offsets when the map ``a`` is such a shift, else None."""
        if a[0, 0] != 1 or a[1, 1] != 1 or a[0, 1] != 0 or a[1, 0] != 0:
            return None
        oy, ox = a[0, 2], a[1, 2]
        if oy != round(oy) or ox != round(ox):
            return None
        oy, ox = int(oy), int(ox)
        ok = _inside(in_hw, out_hw, oy, ox) or (mode == "wrap" and tuple(in_hw) == tuple(out_hw))
        return (oy, ox) if ok else None

    def forward(self, x):
        if self.inside:
            return np.ascontiguousarray(x[..., self.oy:self.oy + self.out_hw[0], self.ox:self.ox + self.out_hw[1]])
        return np.roll(x, (-self.oy, -self.ox), axis=(-2, -1))

    def adjoint(self, g):
        if self.inside:
            out = np.zeros(g.shape[:-2] + self.in_hw, g.dtype)
            out[..., self.oy:self.oy + self.out_hw[0], self.ox:self.ox + self.out_hw[1]] = g
            return out
        return np.roll(g, (self.oy, self.ox), axis=(-2, -1))


class _General:
    def __init__(self, in_hw, out_hw, a, mode):
        (h, w), (oh, ow) = in_hw, out_hw
        ii, jj = np.meshgrid(np.arange(oh, dtype=np.float64), np.arange(ow, dtype=np.float64), indexing="ij")
        ys = a[0, 0] * ii + a[0, 1] * jj + a[0, 2]
        xs = a[1, 0] * ii + a[1, 1] * jj + a[1, 2]
        idx, wts = [], []
        for iy, wy in _taps(ys.ravel(), h, mode):
            for ix, wx in _taps(xs.ravel(), w, mode):
                idx.append(iy * w + ix)
                wts.append(wy * wx)
        self.idx = np.stack(idx).astype(np.intp)
        self.w = np.stack(wts).astype(np.float32)
        self.in_hw, self.out_hw = (h, w), (oh, ow)
        self.fill = (1.0 - self.w.sum(0)).reshape(oh, ow) if mode == "constant" else None

    def forward(self, x):
        lead = x.shape[:-2]
        xf = x.reshape(-1, self.in_hw[0] * self.in_hw[1])
        y = np.take(xf, self.idx[0], axis=1) * self.w[0]
        for k in range(1, 4):
            y += np.take(xf, self.idx[k], axis=1) * self.w[k]
        return y.reshape(lead + self.out_hw)

    def adjoint(self, g):
        """The transpose: each output's four weighted taps added back into the input pixels
        they read, one ``bincount`` (float64 sums) per image row."""
        lead = g.shape[:-2]
        gf = g.reshape(-1, self.out_hw[0] * self.out_hw[1])
        n, flat = self.in_hw[0] * self.in_hw[1], self.idx.ravel()
        out = np.empty((gf.shape[0], n), g.dtype)
        for r in range(gf.shape[0]):
            out[r] = np.bincount(flat, weights=(self.w * gf[r]).ravel(), minlength=n)
        return out.reshape(lead + self.in_hw)


# plans by kind: separable ones are cheap and many (every crop offset), general ones dear
# and few (one per rotation angle), so these must not push those out
_CACHES = {_Separable: (OrderedDict(), 64), _General: (OrderedDict(), 48)}


def _plan(in_hw, out_hw, a: np.ndarray, mode: str):
    shift = _Shift.applies(in_hw, out_hw, a, mode)
    if shift is not None:
        return _Shift(in_hw, out_hw, *shift)
    cls = _Separable if a[0, 1] == 0 and a[1, 0] == 0 else _General
    cache, size = _CACHES[cls]
    key = (in_hw, out_hw, np.round(a, 9).tobytes(), mode)
    plan = cache.get(key)
    if plan is None:
        plan = cache[key] = cls(in_hw, out_hw, a, mode)
        if len(cache) > size:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return plan


class Warp:
    """One sampled coordinate map from an ``in_hw`` image to ``out_hw`` (see the module)."""

    def __init__(self, in_hw, out_hw, matrix, mode: str = "edge", value=0.0):
        if mode not in MODES:
            raise ValueError(f"boundary mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.in_hw = (int(in_hw[0]), int(in_hw[1]))
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self.matrix = np.asarray(matrix, np.float64)[:2, :3]
        self.mode = mode
        self.value = np.asarray(value, np.float32).reshape(-1)
        self.identity = self.in_hw == self.out_hw and np.array_equal(self.matrix, np.eye(2, 3))
        self._p = None

    def linear(self) -> "Warp":
        """This map without the constant fill: the linear part :meth:`adjoint` transposes."""
        return Warp(self.in_hw, self.out_hw, self.matrix, self.mode, 0.0)

    @property
    def plan(self):
        if self._p is None:
            self._p = _plan(self.in_hw, self.out_hw, self.matrix, self.mode)
        return self._p

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.identity:
            return x
        y = self.plan.forward(x)
        if self.plan.fill is not None and self.value.any():
            v = self.value.reshape((1,) * (y.ndim - 3) + (-1, 1, 1))
            y = y + v * self.plan.fill
        return y.astype(x.dtype, copy=False)

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        if self.identity:
            return g
        return self.plan.adjoint(g).astype(g.dtype, copy=False)
