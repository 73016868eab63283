"""A magnitude-constrained, phase-only spectrum (MACO: Fel et al., NeurIPS 2023).

Only the phase of each channel's ``rfft2`` spectrum is optimized; its magnitude stays that of
natural images, so the picture keeps natural-image statistics while the optimizer chooses
where the structure goes. The magnitude is computed here from the two photos this project
ships (``models/samples/chelsea.png`` and ``coffee.png``: scikit-image sample data, CC0), in
the decorrelated colour space of :mod:`.colour`: the mean ``|rfft2|`` of both photos and their
mirror images, resized to the canvas, smoothed in log-magnitude. ``power_magnitude`` is the
alternative, a ``1/f^alpha`` law whose alpha is fitted to the same photos. Either is scaled so
that the colour image has unit mean variance (what the squash expects); the mean (DC term) is
zero, the mean grey.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from ortviz.bundle.embedded import sample
from ortviz.render.modelspace import gaussian_blur
from ortviz.render.param.colour import colour_sqrt
from ortviz.render.param.fourier import frequencies, irfft2_vjp

PHOTOS = ("chelsea.png", "coffee.png")


def _photos_decorrelated(h: int, w: int) -> list[np.ndarray]:
    inv = np.linalg.inv(colour_sqrt())
    out = []
    for name in PHOTOS:
        rgb = Image.open(sample(name)).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
        p = np.asarray(rgb, np.float64).transpose(2, 0, 1) / 255.0 - 0.5
        u = (inv @ p.reshape(3, -1)).reshape(3, h, w)
        out += [u, u[:, :, ::-1]]
    return out


def _doubling(h: int, w: int) -> np.ndarray:
    """How many real coefficients each rfft2 column stands for (1 or 2)."""
    k = np.full((1, w // 2 + 1), 2.0)
    k[0, 0] = 1.0
    if w % 2 == 0:
        k[0, -1] = 1.0
    return k


def _unit_variance(m: np.ndarray, h: int, w: int) -> np.ndarray:
    """Scale a (3, h, w//2+1) magnitude so the colour image has mean per-channel variance 1
    (Parseval for the orthonormal transform, random phases)."""
    m = m.copy()
    m[:, 0, 0] = 0.0
    var_u = (m * m * _doubling(h, w)).sum(axis=(1, 2)) / (h * w)
    var_rgb = (colour_sqrt() ** 2) @ var_u
    return (m / np.sqrt(var_rgb.mean())).astype(np.float32)


@lru_cache(maxsize=8)
def photo_magnitude(h: int, w: int) -> np.ndarray:
    """Mean ``|rfft2|`` of the shipped photos at ``(h, w)``, smoothed, ``(3, h, w//2+1)``."""
    mags = [np.abs(np.fft.rfft2(u, norm="ortho")) for u in _photos_decorrelated(h, w)]
    logm = np.log(np.mean(mags, axis=0) + 1e-8)
    logm = np.fft.ifftshift(gaussian_blur(np.fft.fftshift(logm, axes=1)[None], 1.0)[0], axes=1)
    m = _unit_variance(np.exp(logm), h, w)
    m.setflags(write=False)
    return m


@lru_cache(maxsize=8)
def power_magnitude(h: int, w: int) -> np.ndarray:
    """``a_c / f^alpha`` per channel, alpha and a_c fitted (least squares in log-log) to the
    shipped photos' spectra at ``(h, w)``; ``(3, h, w//2+1)``."""
    f = frequencies(h, w)
    mags = np.mean([np.abs(np.fft.rfft2(u, norm="ortho")) for u in _photos_decorrelated(h, w)], axis=0)
    keep = f > 0
    lf = np.log(f[keep])
    alpha = -np.polyfit(np.tile(lf, 3), np.log(mags[:, keep] + 1e-8).ravel(), 1)[0]
    logs_a = [np.mean(np.log(mags[c][keep] + 1e-8) + alpha * lf) for c in range(3)]
    m = np.exp(np.array(logs_a))[:, None, None] / np.maximum(f, 1.0 / max(h, w))[None] ** alpha
    m = _unit_variance(m, h, w)
    m.setflags(write=False)
    return m


def spectrum_magnitude(u: np.ndarray) -> np.ndarray:
    """``|rfft2(u)|`` (orthonormal) of an ``(N, C, H, W)`` image: a picture's own magnitude, for
    a :class:`Maco` that starts from that picture (the photo's spectrum kept, its phase free)."""
    return np.abs(np.fft.rfft2(u, norm="ortho")).astype(np.result_type(u.dtype, np.float32))


class Maco:
    """Phase ``(N, 3, H, W//2+1)`` -> unbounded image ``irfft2(M * exp(i phase))`` under the
    fixed magnitude ``M`` (``"photos"`` or ``"power"``, or an array: ``(3, H, W//2+1)`` for
    every slot or ``(N, 3, H, W//2+1)``, one per slot). Wrap it in :class:`Colour` for the
    colour mix and the squash."""

    def __init__(self, shape, magnitude="photos"):
        self.shape = tuple(int(s) for s in shape)
        n, c, h, w = self.shape
        if isinstance(magnitude, str):
            if magnitude not in ("photos", "power"):
                raise ValueError(f"magnitude must be photos or power, got {magnitude!r}")
            magnitude = (photo_magnitude if magnitude == "photos" else power_magnitude)(h, w)
        m = np.asarray(magnitude)
        self.magnitude = m if m.dtype == np.float64 else m.astype(np.float32)  # float64: the tests
        self.params_shape = (n, c, h, w // 2 + 1)
        self._last = (None, None, None)
        if self.magnitude.shape not in (self.params_shape[1:], self.params_shape):
            raise ValueError(f"magnitude {self.magnitude.shape} does not fit {self.params_shape[1:]}")

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-np.pi, np.pi, self.params_shape).astype(np.float32)

    def _trig(self, p: np.ndarray):
        """``M cos(p)`` and ``M sin(p)``, kept for the adjoint at the same ``p``."""
        if self._last[0] is not p:
            self._last = (p, self.magnitude * np.cos(p), self.magnitude * np.sin(p))
        return self._last[1], self._last[2]

    def image(self, p: np.ndarray) -> np.ndarray:
        mc, ms = self._trig(p)
        z = np.empty(mc.shape, np.complex128 if p.dtype == np.float64 else np.complex64)
        z.real, z.imag = mc, ms
        return np.fft.irfft2(z, s=self.shape[2:], norm="ortho").astype(p.dtype, copy=False)

    def from_image(self, u: np.ndarray) -> np.ndarray:
        """The phase of ``u``'s spectrum: exactly ``u`` again when this magnitude is ``u``'s own
        (:func:`spectrum_magnitude`), otherwise ``u``'s structure under this magnitude."""
        z = np.fft.rfft2(u, norm="ortho")
        return np.angle(z).astype(np.result_type(u.dtype, np.float32))

    def image_vjp(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        re, im = irfft2_vjp(g, self.shape[3])
        mc, ms = self._trig(p)
        return (im * mc - re * ms).astype(np.result_type(g.dtype, p.dtype), copy=False)

    def project(self, p: np.ndarray) -> np.ndarray:
        return p
