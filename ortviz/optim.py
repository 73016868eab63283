"""Step rules shared by the techniques."""

from __future__ import annotations

import numpy as np


def normalized(g: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Each image's gradient divided by its mean absolute value: steps of a stable size whatever
    the objective's scale (DeepDream's trick, and stable across classes for class
    visualization). Per image, so the images of a batch do not scale each other."""
    return g / (np.abs(g).mean(axis=tuple(range(1, g.ndim)), keepdims=True) + eps)


class Adam:
    """Adam on one array (Kingma & Ba 2015); ``step`` returns the update to *subtract*."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.m = self.v = None
        self.t = 0

    def step(self, g: np.ndarray) -> np.ndarray:
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        mhat = self.m / (1 - self.b1 ** self.t)
        vhat = self.v / (1 - self.b2 ** self.t)
        return (self.lr * mhat / (np.sqrt(vhat) + self.eps)).astype(g.dtype)


class Normalized:
    """Steps of ``lr`` times the gradient over its mean |g| per image (see ``normalized``);
    ``step`` returns the update to *subtract*, like :class:`Adam`."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, g: np.ndarray) -> np.ndarray:
        return (self.lr * normalized(g)).astype(g.dtype)
