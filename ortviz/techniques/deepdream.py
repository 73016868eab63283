"""DeepDream (Mordvintsev et al. 2015).

From a photo, amplify what a layer sees: feature-energy ascent (or any objective value,
``--objective``: channels, several layers at once) with jitter and normalized steps, over octaves (the photo's detail is carried up from the small scales to the large).
Any image size works: the context tiles the fixed-size graph with random shifts.
"""

from __future__ import annotations

from .. import imaging
from ..engine import Step
from ..objectives import FEATURE_ENERGY
from ..optim import normalized
from ..technique import (ITERATIONS, JITTER, OCTAVES, Need, Param, Technique, between, positive,
                         scale_ratio)


def _objective(bundle, text: str):
    from ..objective_text import parse
    return parse(text, bundle) if text.strip() else None


def check(bundle, params) -> None:
    _objective(bundle, params["objective"])


def run(ctx, iterations, lr, jitter, octaves, octave_scale, max_side, objective):
    chosen = _objective(ctx.engine.bundle, objective)
    if chosen is None:  # the layer's energy, through its graph
        def grad(x):
            return ctx.grad(FEATURE_ENERGY.name, ctx.layer, x)
    else:
        f = ctx.bind(chosen)

        def grad(x):
            return Step(*f(x))
    h, w = ctx.photo.shape[:2]
    k = min(1.0, max_side / max(h, w))
    full = (max(8, round(h * k)), max(8, round(w * k)))
    base = ctx.photo_model(full)
    sizes = imaging.octave_sizes(full, octaves, octave_scale)
    detail = None
    t = 0
    for hw in sizes:
        shrunk = imaging.resize(base, hw)
        x = shrunk if detail is None else shrunk + imaging.resize(detail, hw)
        for _ in range(iterations):
            oy, ox = imaging.random_shift(ctx.rng, jitter)
            step = grad(imaging.jitter(x, oy, ox))
            x = ctx.clip(x + lr * normalized(imaging.unjitter(step.grad, oy, ox)))
            ctx.report(t, step.loss, x)
            t += 1
        detail = x - shrunk
    return x


technique = Technique(
    name="deepdream",
    summary="From a photo, amplify what a layer sees (jitter, octaves).",
    needs=(Need(FEATURE_ENERGY, on="layers"),),
    params=(
        Param("iterations", int, 20, "Iterations per octave.", ITERATIONS),
        Param("lr", float, 0.01, "Step size of the normalized ascent.", positive),
        Param("jitter", int, 16, "Largest random shift in pixels (circular).", JITTER),
        Param("octaves", int, 4, "Number of scales, smallest first.", OCTAVES),
        Param("octave_scale", float, 1.4, "Size ratio between octaves.", scale_ratio),
        Param("max_side", int, 512, "Longest side of the result in pixels.", between(8, 4096)),
        Param("objective", str, "", "Objective to dream on (e.g. '_blocks.9:61 + _blocks.12', "
              "see feature-viz); empty: the --layer's energy."),
    ),
    start="photo",
    default_layer="middle",
    run=run,
    check=check,
)
