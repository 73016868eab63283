"""A Gram-matrix objective, an example third-party ortviz objective plugin (numpy only).

``gram(LAYER)`` in an objective string: the squared Frobenius norm of the layer's channel Gram
matrix G = F F^T / S (F: channels x positions), divided by C^2 — the quantity style-transfer
losses are built from, and not of the linear/quadratic form of ortviz's built-in graphs, so it
runs as forward -> this numpy gradient -> the layer's graph. Registered with::

    [project.entry-points."ortviz.objectives"]
    gram = "ortviz_gram:objective"
"""

from __future__ import annotations

import numpy as np

from ortviz.objective.algebra import numpy_objective
from ortviz.objective.plugins import ObjectivePlugin


def gram_energy(phi: np.ndarray) -> tuple[float, np.ndarray]:
    """sum over images of ||F F^T / S||^2 / C^2, and its gradient with respect to phi."""
    b, c = phi.shape[:2]
    f = phi.reshape(b, c, -1).astype(np.float64)
    s = f.shape[2]
    g = f @ f.transpose(0, 2, 1) / s
    loss = float((g ** 2).sum()) / c ** 2
    grad = 4.0 * (g @ f) / (s * c ** 2)
    return loss, grad.reshape(phi.shape)


def make(layer: str):
    def fn(features):
        loss, grad = gram_energy(features[layer])
        return loss, {layer: grad}

    return numpy_objective("gram", layer, fn)


objective = ObjectivePlugin("gram", "Gram-matrix energy ||F F^T / S||^2 / C^2 of a layer", make)
