"""MACO's transparency map (Fel et al., NeurIPS 2023): where the picture mattered to the objective.

The map accumulates the absolute gradient of the objective on the canvas over every step of
the run (summed over colour channels): pixels the objective never cared about stay transparent.
As an alpha channel it is scaled so that its 99th percentile is opaque (a few hot pixels do not
make the rest faint) and clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np

PERCENTILE = 99.0


class Transparency:
    """``map(g)`` for each step's canvas gradient ``g`` (N, 3, H, W) (the render loop's
    ``on_gradient``); ``alpha(i)``: slot i's map, HxW in [0, 1]."""

    def __init__(self):
        self.total: np.ndarray | None = None
        self.steps = 0

    def __call__(self, g: np.ndarray) -> None:
        a = np.abs(np.asarray(g, np.float64)).sum(axis=1)
        self.total = a if self.total is None else self.total + a
        self.steps += 1

    def alpha(self, i: int) -> np.ndarray:
        if self.total is None:
            raise ValueError("no gradient was seen")
        a = self.total[i]
        top = float(np.percentile(a, PERCENTILE))
        if not top > 0:
            return np.zeros_like(a)
        return np.clip(a / top, 0.0, 1.0)
