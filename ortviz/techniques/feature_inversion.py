"""Feature inversion (Mahendran & Vedaldi, CVPR 2015).

From noise, descend on ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at a layer, where phi(x0) are the
photo's features from the bundle's forward graph; L2, total variation and alpha-norm
regularizers; clipping; an occasional blur. Adam steps.
"""

from __future__ import annotations

import numpy as np

from .. import imaging
from ..objectives import FEATURE_DISTANCE
from ..optim import Adam
from ..technique import BLUR_SIGMA, ITERATIONS, Need, Param, Technique, between, non_negative, positive


def run(ctx, iterations, lr, l2, tv, tv_beta, alpha_norm, alpha, blur_every, blur_sigma):
    target = ctx.engine.features(ctx.photo_model(), ctx.layer)
    scale = float((target.astype(np.float64) ** 2).sum()) or 1.0
    x = ctx.noise()
    opt = Adam(lr)
    for t in range(iterations):
        step = ctx.grad(FEATURE_DISTANCE.name, ctx.layer, x, target_features=target)
        g = step.grad / scale + imaging.l2_grad(x, l2)
        loss = step.loss / scale
        if tv:
            tl, tg = imaging.tv_loss_and_grad(x, tv_beta)
            g, loss = g + tv * tg / x[0].size, loss + tv * tl / x[0].size
        if alpha_norm:
            al, ag = imaging.alpha_norm_loss_and_grad(x, alpha)
            g, loss = g + alpha_norm * ag / x[0].size, loss + alpha_norm * al / x[0].size
        x = ctx.clip(x - opt.step(g.astype(np.float32)))
        if blur_every and (t + 1) % blur_every == 0:
            x = imaging.gaussian_blur(x, blur_sigma)
        ctx.report(t, step.loss / scale, x)
    return x


technique = Technique(
    name="feature-inversion",
    summary="From noise, reconstruct a photo from its features at a layer.",
    needs=(Need(FEATURE_DISTANCE, on="layers"),),
    params=(
        Param("iterations", int, 200, "Iterations.", ITERATIONS),
        Param("lr", float, 0.05, "Adam step size (model-space units).", positive),
        Param("l2", float, 0.0, "L2 decay on the image.", non_negative),
        Param("tv", float, 0.05, "Total-variation weight (per pixel).", non_negative),
        Param("tv_beta", float, 2.0, "Total-variation exponent beta.", positive),
        Param("alpha_norm", float, 0.0, "Alpha-norm weight (per pixel).", non_negative),
        Param("alpha", float, 6.0, "Alpha-norm exponent.", between(1, 64)),
        Param("blur_every", int, 0, "Blur every N iterations (0: never).", non_negative),
        Param("blur_sigma", float, 0.5, "Gaussian blur sigma in pixels.", BLUR_SIGMA),
    ),
    start="photo",
    default_layer="early",
    run=run,
)
