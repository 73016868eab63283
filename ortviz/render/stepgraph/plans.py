"""The per-step inputs of the warp graphs, made on the host from a drawn transform chain.

A chain from :func:`ortviz.render.transforms.sample` is one axis-aligned warp (pads, crops, scales and
the resize to the model's input) and at most one rotation about the output's centre. The graphs
take the first as two interpolation matrices (``ry``: ``(oh, h)``; ``rxt``: ``(w, ow)``, the
transposed column matrix) and the second as four bilinear taps per output pixel (weights ``rw``:
``(4, oh*ow)``; indices ``ridx``: ``(3n, 4*oh*ow)``, the same row for each image channel, as
GatherElements takes them) with their transpose (``tw``: ``(k, oh*ow)``, ``tidx``:
``(3n, k*oh*ow)``: the taps that read each pixel, padded with zero weights; ``rfill``: one minus
the weights, where the constant fill shows; ``sfill`` the same for the axis-aligned part).
Everything is cached: by matrix for the axis-aligned part (every crop offset and scale is one of
a few hundred), by angle for the rotation.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ortviz.render import warp as W
from ortviz.render.transforms import boundary


def _lru(cache: OrderedDict, key, make, size: int):
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = make()
        if len(cache) > size:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return hit


_SEPARABLE: OrderedDict = OrderedDict()
_ROTATION: OrderedDict = OrderedDict()


def separable(w: W.Warp) -> dict:
    """``ry``, ``rxt`` of an axis-aligned warp, ``forward(x) = ry @ x @ rxt`` plus the fill
    value times ``sfill`` (one minus the weights each output pixel reads, as ``ortviz.render.warp``)."""
    a = w.matrix

    def make():
        ry = W._matrix_1d(w.in_hw[0], w.out_hw[0], a[0, 0], a[0, 2], w.mode)
        rxt = np.ascontiguousarray(W._matrix_1d(w.in_hw[1], w.out_hw[1], a[1, 1], a[1, 2], w.mode).T)
        return {"ry": ry, "rxt": rxt, "sfill": 1.0 - np.outer(ry.sum(1), rxt.sum(0))}
    return _lru(_SEPARABLE, (w.in_hw, w.out_hw, np.round(a, 9).tobytes(), w.mode), make, 256)


def identity_taps(p: int) -> dict:
    idx = np.zeros((4, p), np.int64)
    idx[0] = np.arange(p)
    wt = np.zeros((4, p), np.float32)
    wt[0] = 1.0
    return {"ridx": idx, "rw": wt, "tidx": idx[:1].copy(), "tw": wt[:1].copy()}


def _per_row(taps: dict, rows: int) -> dict:
    """The graphs' form: each index array flattened and repeated for each of ``rows`` image
    rows (GatherElements takes indices of the data's rank)."""
    def rep(i):
        return np.ascontiguousarray(np.broadcast_to(i.reshape(1, -1), (rows, i.size)))
    return {"ridx": rep(taps["ridx"]), "rw": taps["rw"], "rfill": 1.0 - taps["rw"].sum(0),
            "tidx": rep(taps["tidx"]), "tw": taps["tw"]}


def transposed_taps(idx: np.ndarray, wt: np.ndarray, p_in: int) -> tuple[np.ndarray, np.ndarray]:
    """For taps ``y[j] = sum_k wt[k, j] * x[idx[k, j]]``, the taps of the transpose: ``(tidx,
    tw)`` of shape ``(k, p_in)`` with ``xt[i] = sum_k tw[k, i] * y[tidx[k, i]]``; zero-weight
    taps dropped, the rest padded with weight 0 at index 0."""
    out_j = np.broadcast_to(np.arange(idx.shape[1]), idx.shape).ravel()
    src, w = idx.ravel(), wt.ravel()
    keep = w != 0
    src, out_j, w = src[keep], out_j[keep], w[keep]
    order = np.argsort(src, kind="stable")
    src, out_j, w = src[order], out_j[order], w[order]
    counts = np.bincount(src, minlength=p_in)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(src.size) - starts[src]
    k = max(1, int(counts.max()) if counts.size else 1)
    tidx = np.zeros((k, p_in), np.int64)
    tw = np.zeros((k, p_in), np.float32)
    tidx[slot, src] = out_j
    tw[slot, src] = w
    return tidx, tw


def rotation(w: W.Warp, rows: int) -> dict:
    """The taps of a same-size general warp (a rotation) and their transpose, per row."""
    def make():
        plan = W._General(w.in_hw, w.out_hw, w.matrix, w.mode)
        p = w.in_hw[0] * w.in_hw[1]
        tidx, tw = transposed_taps(plan.idx, plan.w, p)
        return _per_row({"ridx": plan.idx.astype(np.int64), "rw": plan.w, "tidx": tidx, "tw": tw}, rows)
    return _lru(_ROTATION, (w.in_hw, np.round(w.matrix, 9).tobytes(), w.mode, rows), make, 64)


def _identity(p: int, rows: int) -> dict:
    return _lru(_ROTATION, (p, rows), lambda: _per_row(identity_taps(p), rows), 64)


def _axis_aligned(w: W.Warp) -> bool:
    return w.matrix[0, 1] == 0 and w.matrix[1, 0] == 0


def feeds(chain, in_hw, view, n: int = 1) -> dict | None:
    """The warp graphs' inputs for a drawn chain from an ``in_hw`` canvas to ``view`` (``n``
    images of 3 channels), or None when the chain is not of the form the graphs take."""
    ws = list(chain.warps)
    in_hw, view = tuple(in_hw), tuple(view)
    if ws and _axis_aligned(ws[0]):
        first = ws.pop(0)
        sep = separable(first)
    elif in_hw == view:
        sep = {"ry": np.eye(view[0], dtype=np.float32), "rxt": np.eye(view[1], dtype=np.float32),
               "sfill": np.zeros(view, np.float32)}
    else:
        return None
    if ws:
        rot = ws.pop(0)
        if ws or _axis_aligned(rot) or rot.in_hw != view or rot.out_hw != view:
            return None
        taps = rotation(rot, 3 * n)
    else:
        taps = _identity(view[0] * view[1], 3 * n)
    return {**sep, **taps}


def fill_value(transforms) -> np.ndarray:
    """The constant the warps add where they read outside the canvas (zeros unless the
    pipeline's boundary is ``constant``), per channel."""
    mode, value = boundary(transforms)
    v = np.asarray(value, np.float32).reshape(-1) * np.ones(3, np.float32)
    return v if mode == "constant" else np.zeros(3, np.float32)
