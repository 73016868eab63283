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
        self._own = (None, None)   # the moment arrays this rule made (and so may write)
        self.t = 0

    def step(self, g: np.ndarray) -> np.ndarray:
        """The same operations, in the same order, as ``m = b1 m + (1 - b1) g``,
        ``v = b2 v + (1 - b2) g g`` and ``lr (m / d1) / (sqrt(v / d2) + eps)``, done in place
        on the moments and two temporaries (fewer arrays made: a third of the time at 224 px).
        Moments set from outside (the step graphs hand theirs over) are copied first: Adam
        writes only arrays it made."""
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
            self._own = (self.m, self.v)
        if self._own[0] is not self.m or self._own[1] is not self.v or \
                self.m.dtype != np.result_type(self.m.dtype, g.dtype):
            self.m, self.v = (np.array(a, dtype=np.result_type(a.dtype, g.dtype), order="C")
                              for a in (self.m, self.v))
            self._own = (self.m, self.v)
        self.t += 1
        m, v = self.m, self.v
        m *= self.b1
        m += (1 - self.b1) * g
        gg = (1 - self.b2) * g
        gg *= g
        v *= self.b2
        v += gg
        out = m / (1 - self.b1 ** self.t)
        out *= self.lr
        den = np.divide(v, 1 - self.b2 ** self.t, out=gg if gg.dtype == v.dtype else None)
        np.sqrt(den, out=den)
        den += self.eps
        out /= den
        return out.astype(g.dtype, copy=False)


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
