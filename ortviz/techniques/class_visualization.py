"""Class visualization (Simonyan et al. 2014; Olah et al. 2017; Fel et al. 2023).

From a neutral start, climb the target class's score through :func:`ortviz.render.loop.optimize`:
an image parameterization (``--param``: pixels, a 1/f Fourier spectrum with decorrelated
colour (``fft``), the same with photographs' steeper 1/f^1.5 falloff (``natural``, the default),
or MACO's phase-only spectrum), random transforms each step (``--transforms``), and
the class objective's gradient graph. ``--size`` renders a canvas larger than the model's
input through random boxes (``--crops`` of them per step). The pixel parameterization keeps
the classic recipe: normalized ascent, L2 decay, blur, clipping, and octaves that start small
and carry the picture up (the gradient flows back through the resize's exact adjoint).
"""

from __future__ import annotations

from ortviz.bundle.graphs import CLASS_LOG_SOFTMAX, CLASS_SCORE
from ortviz.render import modelspace
from ortviz.render.loop import graph_objective, optimize
from ortviz.techniques import choices, recipes
from ortviz.techniques.spec import BLUR_SIGMA, ITERATIONS, JITTER, OCTAVES, Need, Param, Technique, between, non_negative, scale_ratio

OBJECTIVES = {"score": CLASS_SCORE.name, "log-softmax": CLASS_LOG_SOFTMAX.name}


def run(ctx, iterations, param, transforms, objective, lr, size, crops, decay, l2, jitter, zoom,
        blur_every, blur_sigma, octaves, octave_scale):
    choices.check_octaves(param, octaves)
    f = graph_objective(ctx, OBJECTIVES[objective], "logits", class_weights=ctx.one_hot())
    canvas = (size, size) if size else ctx.size
    ts = recipes.transform_list(ctx, transforms, jitter, zoom, canvas)
    after = recipes.pixel_after_step(l2, blur_every, blur_sigma) if param == "pixel" else None
    x = None
    for k, hw in enumerate(modelspace.octave_sizes(canvas, octaves, octave_scale)):  # pixels: coarse to fine
        p = recipes.parameterization(ctx, param, hw, decay, start=x)
        x = optimize(ctx, f, p, ts, recipes.optimizer(param, lr), iterations, views=crops,
                     start=k * iterations, after_step=after).image
    return x


technique = Technique(
    name="class-visualization",
    summary="From a neutral start, climb a class's score (parameterization, transforms, optimizer).",
    needs=(Need(CLASS_SCORE, on="logits"), Need(CLASS_LOG_SOFTMAX, on="logits")),
    params=(
        Param("iterations", int, 512, "Iterations (per octave for the pixel parameterization); "
              "how often two other networks name the class at 512: the Quality page of the docs.",
              ITERATIONS),
        choices.param_choice("natural"),
        choices.transforms_choice("standard"),
        Param("objective", str, "score", "score (raw logit) or log-softmax (log-probability).",
              lambda v: None if v in OBJECTIVES else f"must be one of {', '.join(OBJECTIVES)}"),
        Param("lr", float, 0.0, "Step size; 0: the parameterization's own (pixel: normalized ascent "
              "0.1; fft, natural, maco: Adam 0.05).", non_negative),
        Param("size", int, 0, "Canvas side in pixels; 0: the model's input size. Larger canvases "
              "are seen through random boxes.", between(0, 4096)),
        Param("crops", int, 1, "Transform draws (random boxes) per iteration, each one gradient "
              "call; gradients are averaged.", between(1, 256)),
        Param("decay", float, 1.0, "Spectrum scaling 1/f^decay (fft).", non_negative),
        Param("l2", float, 2e-3, "L2 decay on the image per iteration (pixel).", non_negative),
        Param("jitter", int, 12, "Largest random circular shift (light transforms).", JITTER),
        Param("zoom", float, 0.0, "Random zoom about the center, up to +-this fraction (light "
              "transforms; 0: none).", lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("blur_every", int, 2, "Blur every N iterations (pixel; 0: never).", non_negative),
        Param("blur_sigma", float, 0.6, "Gaussian blur sigma in pixels (pixel).", BLUR_SIGMA),
        Param("octaves", int, 1, "Scales, smallest first (pixel only); 1 works at one size.", OCTAVES),
        Param("octave_scale", float, 1.6, "Size ratio between octaves.", scale_ratio),
    ),
    start="noise",
    default_layer=None,
    run=run,
    resolve=choices.resolve_lr,
    check=lambda bundle, params: choices.check_octaves(params["param"], params["octaves"]),
    only_for=choices.ONLY_FOR,
)
