"""Pieces the recipes over :mod:`ortviz.render.loop` share: the parameterization, transform list
and step rule that the ``--param``/``--transforms``/``--lr`` choices (:mod:`.choices`) name."""

from __future__ import annotations

import warnings

import numpy as np

from ortviz.render import modelspace, param as parameterizations, transforms as tf
from ortviz.render.optim import Adam, Normalized
from ortviz.techniques import choices
from ortviz.techniques.choices import AUTO_LR


def grey(ctx) -> np.ndarray:
    """The model-space value of the mean grey (pixel 127.5), per channel."""
    return modelspace.grey(ctx.mean, ctx.std)


def transform_list(ctx, name: str, jitter: int = 12, zoom: float = 0.0, canvas=None) -> list:
    """The preset ``name``; ``light`` uses ``jitter`` and ``zoom``. A canvas larger than the
    model's input is seen through a random box first (MACO's crops)."""
    ts = [tf.Jitter(jitter)] + ([tf.Zoom(zoom)] if zoom else []) if name == "light" \
        else tf.preset(name, fill=grey(ctx))
    if canvas is not None and min(canvas) > min(ctx.size):
        ts = [tf.RandomBox(min(ctx.size) / min(canvas), 1.0)] + ts
    return ts


def optimizer(name: str, lr: float):
    """Normalized ascent for pixels (stable across objectives), Adam for the spectra."""
    lr = lr or AUTO_LR[name]
    return Normalized(lr) if name == "pixel" else Adam(lr)


def parameterization(ctx, name: str, hw, decay: float = 1.0, start=None):
    """The ``--param`` parameterization of a picture of size ``hw`` (the recipes' one
    pixel/spectral fork). It starts at ``start`` (a model-space picture, resized to ``hw``: the
    last octave's) or, without one, at noise (pixels) or a random spectrum (fft, maco)."""
    if start is not None and tuple(start.shape[2:]) != tuple(hw):
        start = modelspace.resize(start, hw)
    if start is None and name == "pixel":
        start = ctx.noise()
        start = start if tuple(start.shape[2:]) == tuple(hw) else modelspace.resize(start, hw)
    return parameterizations.make(name, (ctx.batch, 3, *hw), ctx.low, ctx.high, decay=decay,
                                  start=start)


def pixel_after_step(l2: float, blur_every: int, blur_sigma: float):
    """Today's pixel regularizers as a post-step: L2 decay, then a blur every few steps."""
    def after(p, t):
        if l2:
            p = p - modelspace.l2_grad(p, l2)
        if blur_every and (t + 1) % blur_every == 0:
            p = modelspace.gaussian_blur(p, blur_sigma)
        return p.astype(np.float32, copy=False)
    return after


_MOVED = {"param_choice", "transforms_choice", "resolve_lr", "ONLY_FOR", "check_applies",
          "check_octaves"}


def __getattr__(name):  # 0.1's recipes.param_choice & co., for one minor version
    if name in _MOVED:
        warnings.warn(f"ortviz.techniques.recipes.{name} moved to ortviz.techniques.choices.{name} "
                      "in ortviz 0.2; the old name goes in 0.3", DeprecationWarning, stacklevel=2)
        return getattr(choices, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
