"""A diversity set: K pictures of one objective that differ (Lucid's diversity term).

Each picture k has a layer's activation ``phi_k`` (channels x positions) and its Gram matrix
``G_k = phi_k phi_k^T``, normalized to unit Frobenius norm ``Ĝ_k = G_k / |G_k|``. The term is
the mean pairwise cosine similarity of the Gram matrices,

    D = (1/K) sum_{i != j} <Ĝ_i, Ĝ_j>,

and a diversity set climbs ``objective(x_k)`` summed over k minus ``weight * D`` (Lucid's
``objective - weight * diversity(layer)``; descending, for a negative set, it adds it, so the
pictures still differ). Its gradient, exact:

    dD/dĜ_k = (2/K) sum_{j != k} Ĝ_j =: T_k,   dD/dG_k = (T_k - <T_k, Ĝ_k> Ĝ_k) / |G_k|,
    dD/dphi_k = 2 (dD/dG_k) phi_k       (G_k and dD/dG_k are symmetric).

``dD/dphi_k`` joins the weights W of the bundle's ``features`` graph at the layer (the graph's
``<W, phi>`` term), so each step is one forward run for the K activations and one gradient
call per picture (the objective's graphs, with the diversity layer's among them). The bundle's
batch need not be K: the K pictures run in groups of the batch.
"""

from __future__ import annotations

import numpy as np

from ortviz.errors import NumericalError
from ortviz.objective import algebra
from ortviz.objective.algebra import ObjectiveError, layout

EPS = 1e-10   # Lucid's l2_normalize epsilon: an all-zero Gram matrix stays zero


def flat(phi: np.ndarray) -> np.ndarray:
    """Layer activations (K, *layer shape without the batch axis) as (K, channels, positions)."""
    cax, _ = layout(phi.shape)
    return np.moveaxis(phi, cax, 1).reshape(phi.shape[0], phi.shape[cax], -1)


def unflat(g: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of :func:`flat` for activations of ``shape`` (K, ...)."""
    cax, _ = layout(shape)
    moved = np.moveaxis(np.empty(shape, np.uint8), cax, 1).shape
    return np.moveaxis(g.reshape(moved), 1, cax)


def similarity(phi: np.ndarray) -> np.ndarray:
    """The K x K cosine similarities of the Gram matrices of activations ``phi`` (K, ...)."""
    return gram_diversity(flat(np.asarray(phi, np.float64)))[2]


def gram_diversity(phis: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(D, dD/dphi, S)`` for K activations ``phis`` (K, C, P), in float64: the diversity term,
    its gradient (K, C, P), and the K x K matrix of cosine similarities of the Gram matrices."""
    phis = np.asarray(phis, np.float64)
    k = phis.shape[0]
    grams = np.einsum("kcp,kdp->kcd", phis, phis)
    norms = np.sqrt((grams * grams).sum(axis=(1, 2)))
    unit = grams / np.maximum(norms, EPS)[:, None, None]
    sim = np.einsum("icd,jcd->ij", unit, unit)
    d = float((sim.sum() - np.trace(sim)) / k)
    total = unit.sum(axis=0)
    grads = np.empty_like(phis)
    for i in range(k):
        t = (2.0 / k) * (total - unit[i])
        dg = (t - (t * unit[i]).sum() * unit[i]) / max(norms[i], EPS)
        grads[i] = 2.0 * dg @ phis[i]
    return d, grads, sim


class Stacked:
    """``f(x) -> (value, grad)`` of one objective on each of N pictures ``x`` (N, 3, h, w) at the
    model's size, in runs of the bundle's batch (spare slots get no gradient); ``extra(i0, m)``
    gives, per run, layer -> dL/dphi rows for its m pictures."""

    def __init__(self, engine, objective, extra_layer: str | None = None):
        self.engine, self.objective, self.extra_layer = engine, objective, extra_layer
        self.batch = int(engine.image_shape[0])
        self._bound: dict[int, object] = {}

    def bound(self, m: int):
        if m not in self._bound:
            b = algebra.batch([self.objective] * m).bind(self.engine)
            if self.extra_layer is not None:
                b.reads(self.extra_layer)
            self._bound[m] = b
        return self._bound[m]

    def pad(self, x: np.ndarray) -> np.ndarray:
        m = x.shape[0]
        return x if m == self.batch else np.concatenate([x, np.repeat(x[:1], self.batch - m, 0)])

    def __call__(self, x: np.ndarray, extra=None) -> tuple[float, np.ndarray]:
        value, grad = 0.0, np.empty_like(x)
        for i in range(0, x.shape[0], self.batch):
            part = x[i:i + self.batch]
            m = part.shape[0]
            rows = None
            if extra is not None:
                rows = {}
                for layer, g in extra(i, m).items():
                    full = np.zeros((self.batch,) + g.shape[1:], np.float64)
                    full[:m] = g
                    rows[layer] = full
            v, g = self.bound(m)(self.pad(part), rows)
            value += v
            grad[i:i + m] = g[:m]
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            raise NumericalError(f"{self.objective.text()} gave a non-finite value or gradient")
        return value, grad


class Diverse:
    """The objective of a diversity set of ``k`` pictures (see the module): ``f(x) -> (value,
    grad)`` with x (k, 3, h, w); ``value`` is the objective summed over the pictures (the
    diversity term is not in it); ``similarity`` the last call's K x K matrix; ``sign`` +1 when
    the objective is climbed, -1 when it is descended (a negative set)."""

    def __init__(self, engine, objective, layer: str, weight: float, sign: float = 1.0):
        shapes = {l["name"]: l for l in engine.bundle.layers}
        if layer not in shapes:
            raise ObjectiveError(f"unknown diversity layer {layer!r}; layers: {', '.join(shapes)}")
        self.engine, self.layer, self.weight, self.sign = engine, layer, float(weight), float(sign)
        self.tensor = shapes[layer]["tensor"]
        self.stacked = Stacked(engine, objective, layer)
        self.similarity: np.ndarray | None = None
        self.value: float | None = None

    def stacked_alone(self) -> Stacked:
        """The objective alone on the K pictures (no diversity term)."""
        return Stacked(self.engine, self.stacked.objective)

    def activations(self, x: np.ndarray) -> np.ndarray:
        s = self.stacked
        out = [self.engine.forward(s.pad(x[i:i + s.batch]), [self.tensor])[self.tensor][:len(x[i:i + s.batch])]
               for i in range(0, x.shape[0], s.batch)]
        return np.concatenate(out).astype(np.float64)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        phi = self.activations(x)
        d, g_flat, self.similarity = gram_diversity(flat(phi))
        self.value = d
        extra_w = -self.sign * self.weight * unflat(g_flat, phi.shape)   # d/dphi of -sign*w*D
        value, grad = self.stacked(x, lambda i, m: {self.layer: extra_w[i:i + m]})
        value -= float((extra_w * phi).sum())   # the graph added <extra, phi>: take it out
        return value, grad
