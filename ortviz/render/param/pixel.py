"""Pixels: the model-space image is the parameter (the classic parameterization)."""

from __future__ import annotations

import numpy as np


class Pixel:
    """``image(p) = p``; ``project`` clips into the valid range after each step.

    ``start`` is the initial image (``(N, 3, H, W)``); without it, small noise around zero
    (the model space's mean image) drawn from ``rng``."""

    def __init__(self, shape, low, high, start=None, noise: float = 0.1):
        self.shape = tuple(int(s) for s in shape)
        self.low = np.asarray(low, np.float32).reshape(1, -1, 1, 1)
        self.high = np.asarray(high, np.float32).reshape(1, -1, 1, 1)
        self.start = None if start is None else np.asarray(start, np.float32)
        self.noise = noise
        if self.start is not None and self.start.shape != self.shape:
            raise ValueError(f"start image {self.start.shape} is not {self.shape}")

    def init(self, rng: np.random.Generator) -> np.ndarray:
        if self.start is not None:
            return self.start.copy()
        return self.project(self.noise * rng.standard_normal(self.shape).astype(np.float32))

    def image(self, p: np.ndarray) -> np.ndarray:
        return p

    def image_vjp(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g

    def project(self, p: np.ndarray) -> np.ndarray:
        return np.clip(p, self.low, self.high).astype(p.dtype, copy=False)
