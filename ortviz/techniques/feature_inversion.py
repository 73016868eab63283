"""Feature inversion (Mahendran & Vedaldi, CVPR 2015).

From a neutral start, descend on ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at a layer, where
phi(x0) are the photo's features from the bundle's forward graph, through
:func:`ortviz.loop.optimize` with Adam steps. Total variation, alpha-norm and L2 penalties on
the image stand in for a natural-image prior; so can a parameterization (``--param fft``: a 1/f
spectrum with decorrelated colour). Pixels are clipped to the valid range, with an optional
blur.
"""

from __future__ import annotations

import numpy as np

from .. import imaging, recipes
from ..loop import optimize
from ..objectives import FEATURE_DISTANCE
from ..optim import Adam
from ..param import Pixel
from ..technique import BLUR_SIGMA, ITERATIONS, Need, Param, Technique, between, non_negative, positive


def _penalties(size: int, l2, tv, tv_beta, alpha_norm, alpha) -> list:
    """The image penalties, each per pixel: ``x -> (value, grad)``."""
    out = []
    if l2:
        out.append(lambda x: (l2 * float((x * x).sum()), imaging.l2_grad(x, l2)))
    if tv:
        def tv_pen(x):
            v, g = imaging.tv_loss_and_grad(x, tv_beta)
            return tv * v / size, (tv / size) * g
        out.append(tv_pen)
    if alpha_norm:
        def alpha_pen(x):
            v, g = imaging.alpha_norm_loss_and_grad(x, alpha)
            return alpha_norm * v / size, (alpha_norm / size) * g
        out.append(alpha_pen)
    return out


AUTO_LR = 0.05  # Adam's step for every parameterization
# the pixel-only and fft-only options (the L2 penalty applies to every parameterization here)
ONLY_FOR = {k: v for k, v in recipes.ONLY_FOR.items() if k != "l2"}


def run(ctx, iterations, param, transforms, lr, decay, l2, tv, tv_beta, alpha_norm, alpha,
        blur_every, blur_sigma):
    target = ctx.engine.features(ctx.photo_model(), ctx.layer)
    scale = float((target.astype(np.float64) ** 2).sum()) or 1.0

    def distance(x):
        step = ctx.grad(FEATURE_DISTANCE.name, ctx.layer, x, target_features=target)
        return step.loss / scale, step.grad / scale

    ts = recipes.transform_list(ctx, transforms)
    opt = Adam(lr or AUTO_LR)
    pens = _penalties(3 * ctx.size[0] * ctx.size[1], l2, tv, tv_beta, alpha_norm, alpha)
    if param == "pixel":
        x = ctx.noise()
        after = recipes.pixel_after_step(0.0, blur_every, blur_sigma)
        return optimize(ctx, distance, Pixel(x.shape, ctx.low, ctx.high), ts, opt, iterations, pens,
                        params=x, maximize=False, after_step=after).image
    p = recipes.spectral(ctx, param, ctx.size, decay)
    return optimize(ctx, distance, p, ts, opt, iterations, pens, maximize=False).image


technique = Technique(
    name="feature-inversion",
    summary="From a neutral start, reconstruct a photo from its features at a layer.",
    needs=(Need(FEATURE_DISTANCE, on="layers"),),
    params=(
        Param("iterations", int, 200, "Iterations.", ITERATIONS),
        recipes.param_choice("pixel"),
        recipes.transforms_choice("none"),
        Param("lr", float, 0.0, f"Adam step size; 0: {AUTO_LR}.", non_negative),
        Param("decay", float, 1.0, "Spectrum scaling 1/f^decay (fft).", non_negative),
        Param("l2", float, 0.0, "L2 penalty on the image.", non_negative),
        Param("tv", float, 0.05, "Total-variation weight (per pixel).", non_negative),
        Param("tv_beta", float, 2.0, "Total-variation exponent beta.", positive),
        Param("alpha_norm", float, 0.0, "Alpha-norm weight (per pixel).", non_negative),
        Param("alpha", float, 6.0, "Alpha-norm exponent.", between(1, 64)),
        Param("blur_every", int, 0, "Blur every N iterations (pixel; 0: never).", non_negative),
        Param("blur_sigma", float, 0.5, "Gaussian blur sigma in pixels (pixel).", BLUR_SIGMA),
    ),
    start="photo",
    shows_photo=True,
    default_layer="early",
    run=run,
    resolve=lambda params, layer: recipes.resolve_lr(params, dict.fromkeys(recipes.AUTO_LR, AUTO_LR)),
    only_for=ONLY_FOR,
)
