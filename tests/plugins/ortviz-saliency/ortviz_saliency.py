"""SmoothGrad saliency (Smilkov et al. 2017), an example third-party ortviz plugin.

Which pixels of the photo does the target class's score depend on? The gradient of the
class score (the bundle's existing ``class_score`` graph at the logits) with respect to the
input, averaged in absolute value over ``iterations`` copies of the photo with Gaussian noise
added (std ``noise`` times the model-space value range): the averaging removes most of the
speckle of a single gradient. The result is the photo overlaid with a red-to-yellow heat map
(grey where the score does not depend on the pixel), returned in model space like any other
technique's image. Nothing is optimized: each iteration is one noisy sample.

Registered with two lines of ``pyproject.toml``::

    [project.entry-points."ortviz.techniques"]
    saliency = "ortviz_saliency:technique"
"""

from __future__ import annotations

import numpy as np

from ortviz.bundle.graphs import CLASS_SCORE
from ortviz.render import modelspace
from ortviz.techniques.spec import Need, Param, Technique, non_negative, positive


def heat_overlay(photo: np.ndarray, s: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 photo and HxW saliency in 0..1 -> HxWx3 float pixels (0..255)."""
    grey = photo.astype(np.float32).mean(axis=2, keepdims=True).repeat(3, axis=2)
    heat = np.stack([np.ones_like(s), s, np.zeros_like(s)], axis=2) * 255.0
    heat = np.where(s[..., None] > 0, heat, grey)
    return photo.astype(np.float32) * 0.35 + heat * 0.65


def run(ctx, iterations, noise):
    x0 = ctx.photo_model()
    sigma = (noise * (ctx.high - ctx.low)).astype(np.float32)   # per channel, (1, 3, 1, 1)
    weights = ctx.one_hot()
    total = np.zeros_like(x0)
    for t in range(iterations):
        x = (x0 + sigma * ctx.rng.standard_normal(x0.shape)).astype(np.float32)
        step = ctx.grad(CLASS_SCORE.name, "logits", x, class_weights=weights)
        total += np.abs(step.grad)
        ctx.report(t, step.loss, x0)
    s = (total / iterations)[0].max(axis=0)                     # HxW: max over channels
    top = float(np.percentile(s, 99))
    s = np.clip(s / top, 0.0, 1.0) if top > 0 else np.zeros_like(s)
    photo = modelspace.from_model(x0, ctx.mean, ctx.std)
    pixels = np.clip(np.rint(heat_overlay(photo, s)), 0, 255).astype(np.uint8)
    return modelspace.to_model(pixels, ctx.mean, ctx.std)


technique = Technique(
    name="saliency",
    summary="From a photo, a SmoothGrad saliency map of the target class (heat overlay).",
    needs=(Need(CLASS_SCORE, on="logits"),),
    params=(
        Param("iterations", int, 16, "Noisy samples averaged (SmoothGrad).", positive),
        Param("noise", float, 0.15, "Noise std as a fraction of the value range.", non_negative),
    ),
    start="photo",
    run=run,
)
