"""Decorrelated colour and a squash into the model's valid range.

ImageNet's pixel colours are strongly correlated (most variance is brightness). Krizhevsky et
al. (NeurIPS 2012, "PCA lighting", published in fb.resnet.torch as ``eigval``/``eigvec``) give
the eigen-decomposition of the RGB covariance of ImageNet pixels on a 0..1 scale:

    eigenvalues   0.2175, 0.0188, 0.0045
    eigenvectors  (columns)  [-0.5675  0.7192  0.4009]
                             [-0.5808 -0.0045 -0.8140]
                             [-0.5836 -0.6948  0.4203]

A square root of that covariance, ``V diag(sqrt(lambda))``, maps uncorrelated unit-variance
channels to ImageNet-like colour; it is normalized here by its largest column norm (the
brightness axis), as Olah et al. 2017 do. :class:`Colour` applies it to an unbounded image
from a spectrum and squashes the result into ``[low, high]`` (the model-space values of pixels
0 and 255) with a sigmoid, or with a clip whose gradient is zero where it clips.
"""

from __future__ import annotations

import numpy as np

EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]])


def colour_sqrt() -> np.ndarray:
    """The normalized 3x3 square root of ImageNet's colour covariance (float64):
    ``rgb = colour_sqrt() @ decorrelated`` per pixel."""
    m = EIGVEC * np.sqrt(EIGVAL)[None, :]
    return m / np.linalg.norm(m, axis=0).max()


def _mix(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply a 3x3 matrix to the channel axis of an (N, 3, H, W) array."""
    n, c, h, w = x.shape
    return np.matmul(m, x.reshape(n, c, h * w)).reshape(n, c, h, w)


class Colour:
    """``x = low + (high - low) * squash(C @ inner.image(p))`` per pixel.

    ``squash``: ``"sigmoid"`` (smooth, never saturates exactly) or ``"clip"`` (of ``rgb + 0.5``
    into 0..1). ``decorrelate=False`` uses the identity for C."""

    def __init__(self, inner, low, high, squash: str = "sigmoid", decorrelate: bool = True):
        if squash not in ("sigmoid", "clip"):
            raise ValueError(f"squash must be sigmoid or clip, got {squash!r}")
        self.inner, self.squash = inner, squash
        self.shape = inner.shape
        self.low = np.asarray(low, np.float32).reshape(1, -1, 1, 1)
        self.span = (np.asarray(high, np.float32).reshape(1, -1, 1, 1) - self.low)
        self.c = (colour_sqrt() if decorrelate else np.eye(3)).astype(np.float32)
        self._last = (None, None)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return self.inner.init(rng)

    def _unit(self, p: np.ndarray) -> np.ndarray:
        """The squashed image in 0..1 (kept for the adjoint at the same ``p``)."""
        if self._last[0] is p:
            return self._last[1]
        u = self.inner.image(p)
        rgb = _mix(self.c.astype(u.dtype), u)
        if self.squash == "sigmoid":
            s = 0.5 * (1.0 + np.tanh(0.5 * rgb))  # = 1 / (1 + exp(-rgb)), no overflow
        else:
            s = np.clip(rgb + 0.5, 0.0, 1.0)
        self._last = (p, s)
        return s

    def image(self, p: np.ndarray) -> np.ndarray:
        s = self._unit(p)
        return (self.low + self.span * s).astype(s.dtype, copy=False)

    def image_vjp(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        s = self._unit(p)
        if self.squash == "sigmoid":
            d = s * (1.0 - s)
        else:
            d = ((s > 0) & (s < 1)).astype(s.dtype)
        return self.inner.image_vjp(p, _mix(self.c.T.astype(g.dtype), g * self.span * d))

    def project(self, p: np.ndarray) -> np.ndarray:
        return self.inner.project(p)
