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


def cosine_schedule(lr: float, end: float, steps: int):
    """Step size ``t -> lr`` falling along half a cosine from ``lr`` at step 0 to ``end * lr``
    at the last step (``end`` 1: constant)."""
    def at(t: int) -> float:
        if end == 1 or steps <= 1:
            return lr
        k = min(max(t, 0), steps - 1) / (steps - 1)
        return lr * (end + (1 - end) * 0.5 * (1 + np.cos(np.pi * k)))
    return at


class Scheduled:
    """A step rule whose ``lr`` follows ``schedule(t)`` (t counts this rule's steps from 0)."""

    def __init__(self, rule, schedule):
        self.rule, self.schedule, self.t = rule, schedule, 0

    def step(self, g: np.ndarray) -> np.ndarray:
        self.rule.lr = self.schedule(self.t)
        self.t += 1
        return self.rule.step(g)
