"""DeepDream (Mordvintsev et al. 2015) as a recipe over :func:`ortviz.render.loop.optimize`.

From a photo, amplify what a layer sees: feature-energy ascent (or any objective value,
``--objective``: channels, several layers at once) with normalized steps, over octaves (the
photo's detail is carried up from the small scales to the large). Each octave is one run of the
loop: a parameterization started from the photo plus the carried detail (``--param``: pixels;
``fft``/``maco`` start from the photo's own spectrum, at one octave), the transform list
(``--transforms light``: the classic circular jitter, the default; ``standard``: Lucid's, which
measured no better here: less feature energy at equal iterations, about the same SSIM to the
photo — ``bench/dream.py``), clipping into the valid range through the
parameterization. The loop's views keep the picture's own size (``view_size="canvas"``): any
image size works, the context tiles the fixed-size graph with random shifts.
"""

from __future__ import annotations

from ortviz.bundle.graphs import FEATURE_ENERGY
from ortviz.objective.algebra import ObjectiveError
from ortviz.objective.coerce import as_objectives
from ortviz.render import modelspace, param as parameterizations
from ortviz.render.loop import graph_objective, optimize
from ortviz.techniques import choices, recipes
from ortviz.techniques.spec import (ITERATIONS, JITTER, OCTAVES, Need, Param, Technique, between,
                                    positive, scale_ratio)


def _objective(bundle, text: str):
    """The one objective a dream climbs, or None: the layer's energy (its own graph)."""
    if not text.strip():
        return None
    objs = as_objectives(text, bundle)
    if len(objs) > 1:
        raise ObjectiveError(f"deepdream climbs one objective, not {len(objs)} (';')")
    return objs[0]


PIXEL_OCTAVES = 4  # octaves when none are given: this many for pixels; the spectra work at one


def check(bundle, params) -> None:
    choices.check_octaves(params["param"], params["octaves"])
    _objective(bundle, params["objective"])


def resolve(params, layer) -> dict:
    """No ``--objective``: the layer's energy, written as the objective string that means it
    (the layer's name)."""
    if not params["objective"].strip() and layer:
        params["objective"] = layer
    return params


def run(ctx, iterations, param, transforms, lr, jitter, octaves, octave_scale, max_side, objective):
    choices.check_octaves(param, octaves)
    chosen = _objective(ctx.engine.bundle, objective)
    if chosen is None or chosen.text() == f"energy({ctx.layer})":  # the layer's energy: its graph
        f = graph_objective(ctx, FEATURE_ENERGY.name, ctx.layer)
    else:
        f = ctx.bind(chosen)
    h, w = ctx.photo.shape[:2]
    k = min(1.0, max_side / max(h, w))
    full = (max(8, round(h * k)), max(8, round(w * k)))
    base = ctx.photo_model(full)
    ts = recipes.transform_list(ctx, transforms, jitter)
    x = detail = None
    for i, hw in enumerate(modelspace.octave_sizes(full, octaves, octave_scale)):
        shrunk = modelspace.resize(base, hw)
        start = shrunk if detail is None else shrunk + modelspace.resize(detail, hw)
        p = parameterizations.make(param, start.shape, ctx.low, ctx.high, start=start)
        x = optimize(ctx, f, p, ts, recipes.optimizer(param, lr), iterations,
                     start=i * iterations, view_size="canvas").image
        detail = x - shrunk
    return x


technique = Technique(
    name="deepdream",
    summary="From a photo, amplify what a layer sees (jitter, octaves).",
    needs=(Need(FEATURE_ENERGY, on="layers"),),
    params=(
        Param("iterations", int, 20, "Iterations per octave.", ITERATIONS),
        choices.param_choice("pixel", "All start at the photo (maco keeps the photo's own "
                             "magnitude spectrum); fft and maco work at one octave."),
        choices.transforms_choice("light", "light is the circular --jitter; standard reached less "
                                  "feature energy at equal iterations."),
        Param("lr", float, 0.01, "Step size: normalized ascent (pixel) or Adam (fft, maco).", positive),
        Param("jitter", int, 16, "Largest random shift in pixels (circular; light transforms).", JITTER),
        Param("octaves", int, PIXEL_OCTAVES, "Number of scales, smallest first (pixel; fft and maco "
              "work at one: 1 unless given).", OCTAVES,
              auto=lambda p: PIXEL_OCTAVES if p["param"] == "pixel" else 1),
        Param("octave_scale", float, 1.4, "Size ratio between octaves.", scale_ratio),
        Param("max_side", int, 512, "Largest longest side of the result in pixels: a larger photo "
              "is shrunk to it, a smaller one keeps its own size; a photo whose shorter side would "
              "fall below 8 pixels at it is refused.", between(8, 4096)),
        Param("objective", str, "", "Objective to dream on (e.g. '_blocks.9:61 + _blocks.12', "
              "see feature-viz); empty: the --layer's energy."),
    ),
    start="photo",
    default_layer="middle",
    run=run,
    check=check,
    resolve=resolve,
    only_for=choices.ONLY_FOR,
)
