"""Image parameterizations: what the optimizer moves, and how it becomes an image.

A parameterization is a small value with

- ``shape``: the image it makes, ``(N, 3, H, W)``;
- ``init(rng) -> params``: a float32 array, the starting point (its own shape);
- ``image(params) -> x``: the ``(N, 3, H, W)`` float32 image in the model's normalized space
  (``x = (pixel - mean) / std``);
- ``image_vjp(params, grad_image) -> grad_params``: the exact adjoint of ``image``'s Jacobian
  at ``params`` applied to a gradient on the image;
- ``project(params) -> params``: applied after every optimizer step (clipping for pixels,
  identity for the others).

Every built-in can start from a picture (``start=``): pixels are the picture; the spectra
invert squash, colour matrix and transform exactly (``Colour.from_image``), and MACO then keeps
that picture's own magnitude spectrum and optimizes its phase.

Each batch slot is its own image: nothing here mixes slots. The built-ins:

- :class:`Pixel` — the model-space pixels themselves, clipped to the valid range;
- :class:`Fourier` — a 1/f^decay-scaled spectrum (Olah et al. 2017);
- :class:`Natural` — a 1/f^1.5 spectrum with 1/f's gain at the lowest frequency (photographs'
  falloff, no saturation);
- :class:`Maco` — phase only, under a fixed natural-image magnitude (Fel et al. 2023);
- :class:`Colour` — wraps a spectrum: decorrelated colour (the square root of ImageNet's
  colour covariance) and a sigmoid or clip into the valid range.

:func:`make` builds them by the names the techniques' ``--param`` option takes.
"""

from __future__ import annotations

from ortviz.render.param.colour import Colour, colour_sqrt, unsquash
from ortviz.render.param.fourier import Fourier, frequencies, irfft2_vjp
from ortviz.render.param.maco import Maco, photo_magnitude, power_magnitude, spectrum_magnitude
from ortviz.render.param.natural import Natural
from ortviz.render.param.pixel import Pixel

NAMES = ("pixel", "fft", "maco", "natural")

__all__ = ["Colour", "Fourier", "Maco", "NAMES", "Natural", "Pixel", "colour_sqrt", "frequencies",
           "irfft2_vjp", "make", "photo_magnitude", "power_magnitude", "spectrum_magnitude", "unsquash"]


def make(name: str, shape, low, high, *, decay: float = 1.0, init_std: float = 0.01,
         squash: str = "sigmoid", start=None):
    """The parameterization called ``name`` (one of :data:`NAMES`) for images of ``shape``
    in the model-space range ``[low, high]`` (per-channel arrays from ``imaging.valid_range``).
    ``start``: a model-space picture of ``shape`` to start from (``init`` then returns the
    parameters whose image it is; for maco the magnitude is the picture's own spectrum)."""
    if name == "pixel":
        return Pixel(tuple(shape), low, high, start=start)
    if name == "fft":
        return Colour(Fourier(tuple(shape), decay=decay, init_std=init_std), low, high, squash=squash,
                      start=start)
    if name == "natural":
        return Colour(Natural(tuple(shape), init_std=init_std), low, high, squash=squash, start=start)
    if name == "maco":
        magnitude = "photos" if start is None else \
            spectrum_magnitude(unsquash(start, low, high, squash)).astype("float32")
        return Colour(Maco(tuple(shape), magnitude), low, high, squash=squash, start=start)
    raise ValueError(f"unknown parameterization {name!r}; one of {', '.join(NAMES)}")
