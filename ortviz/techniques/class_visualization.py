"""Class visualization (Simonyan et al. 2014, regularizers of Yosinski et al. 2015).

From noise, climb the target class's score. Each iteration: random jitter (a circular shift)
and zoom, both undone on the gradient (the zoom through its exact adjoint); the class
objective's gradient, L2 decay, a normalized ascent step, clipping to the valid pixel range;
a Gaussian blur every few iterations. Octaves start
small and carry the picture up to the model's size (the gradient flows back through the
resize's exact adjoint).
"""

from __future__ import annotations

from .. import imaging
from ..objectives import CLASS_LOG_SOFTMAX, CLASS_SCORE
from ..optim import normalized
from ..technique import (BLUR_SIGMA, ITERATIONS, JITTER, OCTAVES, Need, Param, Technique, between,
                         non_negative, positive, scale_ratio)

OBJECTIVES = {"score": CLASS_SCORE.name, "log-softmax": CLASS_LOG_SOFTMAX.name}


def run(ctx, iterations, lr, l2, jitter, zoom, blur_every, blur_sigma, octaves, octave_scale,
        objective):
    weights = ctx.one_hot()
    sizes = imaging.octave_sizes(ctx.size, octaves, octave_scale)
    x = imaging.resize(ctx.noise(), sizes[0])
    t = 0
    for k, hw in enumerate(sizes):
        if k:
            x = imaging.resize(x, hw)
        for _ in range(iterations):
            oy, ox = imaging.random_shift(ctx.rng, jitter)
            f = 1.0 + ctx.rng.uniform(-zoom, zoom) if zoom else 1.0
            xj = imaging.zoom(imaging.jitter(x, oy, ox), f)
            step = ctx.grad(OBJECTIVES[objective], "logits", xj, class_weights=weights)
            g = imaging.unjitter(imaging.zoom_transpose(step.grad, f), oy, ox)
            x = x + lr * normalized(g) - imaging.l2_grad(x, l2)
            x = ctx.clip(x)
            if blur_every and (t + 1) % blur_every == 0:
                x = imaging.gaussian_blur(x, blur_sigma)
            ctx.report(t, step.loss, x)
            t += 1
    return x


technique = Technique(
    name="class-visualization",
    summary="From noise, climb a class's score (jitter, L2 decay, blur, clipping).",
    needs=(Need(CLASS_SCORE, on="logits"), Need(CLASS_LOG_SOFTMAX, on="logits")),
    params=(
        Param("iterations", int, 100, "Iterations per octave.", ITERATIONS),
        Param("lr", float, 0.1, "Step size of the normalized ascent (model-space units).", positive),
        Param("l2", float, 2e-3, "L2 decay on the image per iteration.", non_negative),
        Param("jitter", int, 12, "Largest random shift in pixels (circular).", JITTER),
        Param("zoom", float, 0.0, "Random zoom about the center, up to +-this fraction (0: none).",
              lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("blur_every", int, 2, "Blur every N iterations (0: never).", non_negative),
        Param("blur_sigma", float, 0.6, "Gaussian blur sigma in pixels.", BLUR_SIGMA),
        Param("octaves", int, 2, "Scales, smallest first; 1 works at the model's size only.", OCTAVES),
        Param("octave_scale", float, 1.6, "Size ratio between octaves.", scale_ratio),
        Param("objective", str, "log-softmax", "log-softmax (log-probability) or score (raw logit).",
              lambda v: None if v in OBJECTIVES else f"must be one of {', '.join(OBJECTIVES)}"),
    ),
    start="noise",
    default_layer=None,
    run=run,
)
