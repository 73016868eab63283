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

Starting from a picture (``start=``, DeepDream's photo): :func:`unsquash` inverts the squash
(the sigmoid's inverse is clamped half a grey level inside the range, where it is finite) and
the colour matrix, and the spectrum's own ``from_image`` inverts the transform, so that
``image(init(rng))`` is the picture again (to float rounding; a pixel at 0 or 255 comes back
within half a grey level).
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


EDGE = 0.5 / 255  # the sigmoid's inverse is clamped this far inside 0..1: half a grey level


def unsquash(x: np.ndarray, low, high, squash: str = "sigmoid", c: np.ndarray | None = None) -> np.ndarray:
    """The unbounded decorrelated image ``u`` with ``low + (high - low) * squash(c @ u) = x``
    (``c``: the colour matrix, default :func:`colour_sqrt`); float64."""
    low = np.asarray(low, np.float64).reshape(1, -1, 1, 1)
    span = np.asarray(high, np.float64).reshape(1, -1, 1, 1) - low
    s = (np.asarray(x, np.float64) - low) / span
    if squash == "sigmoid":
        s = np.clip(s, EDGE, 1.0 - EDGE)
        rgb = np.log(s) - np.log1p(-s)
    else:
        rgb = np.clip(s, 0.0, 1.0) - 0.5
    return _mix(np.linalg.inv(colour_sqrt() if c is None else np.asarray(c, np.float64)), rgb)


class Colour:
    """``x = low + (high - low) * squash(C @ inner.image(p))`` per pixel.

    ``squash``: ``"sigmoid"`` (smooth, never saturates exactly) or ``"clip"`` (of ``rgb + 0.5``
    into 0..1). ``decorrelate=False`` uses the identity for C. ``start``: a picture
    ``(N, 3, H, W)`` in model space to start from (``init`` then returns its parameters,
    :meth:`from_image`; a :class:`Maco` inner should carry that picture's own magnitude,
    :func:`ortviz.render.param.make` arranges it)."""

    def __init__(self, inner, low, high, squash: str = "sigmoid", decorrelate: bool = True,
                 start=None):
        if squash not in ("sigmoid", "clip"):
            raise ValueError(f"squash must be sigmoid or clip, got {squash!r}")
        self.inner, self.squash = inner, squash
        self.shape = inner.shape
        self.low = np.asarray(low, np.float32).reshape(1, -1, 1, 1)
        self.span = (np.asarray(high, np.float32).reshape(1, -1, 1, 1) - self.low)
        self.c = (colour_sqrt() if decorrelate else np.eye(3)).astype(np.float32)
        self._last = (None, None)
        if start is not None and tuple(np.shape(start)) != self.shape:
            raise ValueError(f"start image {np.shape(start)} is not {self.shape}")
        self.start = None if start is None else self.from_image(start)

    def unsquash(self, x: np.ndarray) -> np.ndarray:
        """The inner image ``u`` that this parameterization turns into ``x`` (float64)."""
        return unsquash(x, self.low, self.low + self.span, self.squash, self.c)

    def from_image(self, x: np.ndarray) -> np.ndarray:
        """Parameters whose image is ``x`` (model space, ``(N, 3, H, W)``), float32."""
        return self.inner.from_image(self.unsquash(x)).astype(np.float32)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return self.inner.init(rng) if self.start is None else self.start.copy()

    def _unit(self, p: np.ndarray) -> np.ndarray:
        """The squashed image in 0..1 (kept for the adjoint at the same ``p``)."""
        if self._last[0] is p:
            return self._last[1]
        u = self.inner.image(p)
        rgb = _mix(self.c.astype(u.dtype), u)
        if self.squash == "sigmoid":   # 0.5 (1 + tanh(0.5 rgb)) = 1 / (1 + exp(-rgb)), no overflow
            s = rgb                    # in place, the same operations in the same order
            s *= 0.5
            np.tanh(s, out=s)
            s += 1.0
            s *= 0.5
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
            d = 1.0 - s
            d *= s
        else:
            d = ((s > 0) & (s < 1)).astype(s.dtype)
        gd = g * self.span
        gd *= d
        return self.inner.image_vjp(p, _mix(self.c.T.astype(g.dtype), gd))

    def project(self, p: np.ndarray) -> np.ndarray:
        return self.inner.project(p)
