"""A Fourier-spectrum parameterization with 1/f^decay scaling (Olah et al., Distill 2017).

The parameters are the real and imaginary parts of each channel's ``rfft2`` spectrum,
``(N, C, H, W//2 + 1, 2)``; the image is ``irfft2(scale * (re + i im), norm="ortho")``, with
``scale = 1 / max(f, 1/max(H, W)) ** decay``. The orthonormal inverse transform already carries
the sqrt(H*W) factor Lucid multiplies by (doing both saturates any squash that follows).
Equal steps on every coefficient then change low frequencies more than high ones: the
optimizer finds smooth, natural-looking images first.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def frequencies(h: int, w: int) -> np.ndarray:
    """Radial frequency (cycles per pixel) of each ``rfft2`` coefficient, ``(h, w//2 + 1)``."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f.setflags(write=False)
    return f


def _rfft2_doubled(g: np.ndarray, w: int) -> np.ndarray:
    z = np.fft.rfft2(g, norm="ortho")
    last = z.shape[-1] if w % 2 else z.shape[-1] - 1
    z[..., 1:last] *= 2
    return z


def irfft2_vjp(g: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Adjoint of ``z -> irfft2(z, s=(H, w), norm="ortho")`` with respect to (Re z, Im z).

    ``rfft2(g, norm="ortho")`` with columns 1 .. ceil(w/2)-1 doubled: each of those stands
    for itself and its Hermitian mirror; column 0 and (even w) column w/2 have none."""
    z = _rfft2_doubled(g, w)
    return z.real, z.imag


def _complex(p: np.ndarray) -> np.ndarray:
    """``p[..., 0] + i p[..., 1]`` in ``p``'s precision: a view where ``p`` is a contiguous
    float32 or float64 array (the same numbers, none made)."""
    if p.dtype in (np.float32, np.float64) and p.flags.c_contiguous:
        return p.view(np.complex64 if p.dtype == np.float32 else np.complex128)[..., 0]
    return (p[..., 0] + 1j * p[..., 1]).astype(np.complex128 if p.dtype == np.float64 else np.complex64,
                                              copy=False)


class Fourier:
    """Spectrum -> unbounded image ``(N, C, H, W)`` (wrap it in :class:`Colour` for colour
    decorrelation and a squash into the valid range)."""

    def __init__(self, shape, decay: float = 1.0, init_std: float = 0.01):
        self.shape = tuple(int(s) for s in shape)
        n, c, h, w = self.shape
        self.decay, self.init_std = float(decay), float(init_std)
        self.scale = (1.0 / np.maximum(frequencies(h, w), 1.0 / max(h, w)) ** self.decay).astype(np.float32)
        self.params_shape = (n, c, h, w // 2 + 1, 2)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return (self.init_std * rng.standard_normal(self.params_shape)).astype(np.float32)

    def image(self, p: np.ndarray) -> np.ndarray:
        z = _complex(p) * self.scale
        return np.fft.irfft2(z, s=self.shape[2:], norm="ortho").astype(p.dtype, copy=False)

    def from_image(self, u: np.ndarray) -> np.ndarray:
        """Parameters whose image is ``u`` (``(N, C, H, W)``, real): ``rfft2(u) / scale``, in
        ``u``'s precision."""
        z = np.fft.rfft2(u, norm="ortho") / self.scale
        return np.stack([z.real, z.imag], axis=-1).astype(np.result_type(u.dtype, np.float32))

    def image_vjp(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        z = _rfft2_doubled(np.asarray(g, np.result_type(g.dtype, np.float32)), self.shape[3])
        z.real *= self.scale
        z.imag *= self.scale
        return z.view(z.real.dtype).reshape(self.params_shape)   # (re, im) pairs, as the parameters

    def project(self, p: np.ndarray) -> np.ndarray:
        return p
