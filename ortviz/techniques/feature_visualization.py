"""Feature visualization (Erhan et al. 2009; Olah et al. 2017): from noise, climb any objective.

The objective is a value of :mod:`ortviz.algebra` or its string (``--objective``): a channel
(``_blocks.10:5``), a neuron (``_blocks.10:5@3,4``), a layer's energy (``_blocks.10``), a class
(``class:flamingo``), sums and differences of these, or a plugin's numpy objective. Several
objectives separated by ``;`` run at once, one per batch slot, on a bundle exported with
``--batch``; each slot is its own result. It runs on the render loop (:mod:`ortviz.loop`) with an
image parameterization (``--param``, default the 1/f Fourier spectrum with decorrelated colour)
and Lucid's standard random transforms; the pixel parameterization keeps normalized ascent,
L2 decay and blur.
"""

from __future__ import annotations

from .. import recipes
from ..algebra import Objective, ObjectiveError, PerSlot
from ..loop import optimize
from ..param import Pixel
from ..technique import BLUR_SIGMA, ITERATIONS, Param, Technique, non_negative

DEFAULT = "middle:0"  # channel 0 of the middle layer, on any bundle (ortviz.selection)


def objectives(bundle, value) -> list:
    """The objective value(s) for ``value`` (a string, a value, or a list of values: one per
    batch slot), checked against the bundle; raises ObjectiveError (one line)."""
    from ..objective_text import parse_slots
    if isinstance(value, str):
        objs = parse_slots(value, bundle)
    elif isinstance(value, Objective):
        objs = [value]
    elif isinstance(value, PerSlot):
        objs = list(value.objectives)
    elif isinstance(value, (list, tuple)) and value:
        objs = [o if isinstance(o, Objective) else parse_slots(o, bundle)[0] for o in value]
    else:
        raise ObjectiveError(f"not an objective: {value!r}")
    batch = bundle.input["shape"][0]
    if len(objs) > batch:
        raise ObjectiveError(f"{len(objs)} objectives for a batch of {batch}: export the bundle "
                             f"with --batch {len(objs)} to run them at once, or run them one by one")
    from types import SimpleNamespace

    from ..binding import Bound
    probe = SimpleNamespace(bundle=bundle, image_shape=tuple(bundle.input["shape"]))
    Bound(probe, objs, per_slot=len(objs) > 1)  # every term fits the bundle
    return objs


def check(bundle, params) -> None:
    objectives(bundle, params["objective"])


def run(ctx, objective, iterations, param, transforms, lr, decay, l2, blur_every, blur_sigma):
    objs = objectives(ctx.engine.bundle, objective)
    f = ctx.bind(objs if len(objs) > 1 else objs[0])
    ts = recipes.transform_list(ctx, transforms)
    if param == "pixel":
        x = ctx.noise()
        return optimize(ctx, f, Pixel(x.shape, ctx.low, ctx.high), ts, recipes.optimizer(param, lr),
                        iterations, params=x,
                        after_step=recipes.pixel_after_step(l2, blur_every, blur_sigma)).image
    p = recipes.spectral(ctx, param, ctx.size, decay)
    return optimize(ctx, f, p, ts, recipes.optimizer(param, lr), iterations).image


def _objective_ok(v):
    return None if isinstance(v, (str, Objective, PerSlot, list, tuple)) and v != "" else \
        "must be an objective such as _blocks.10:5 or class:flamingo"


technique = Technique(
    name="feature-visualization",
    summary="From noise, climb any objective: a channel, neuron, direction, class or their sums.",
    needs=(),
    params=(
        Param("objective", str, DEFAULT, "Objective: LAYER:CHANNEL, LAYER:CHANNEL@Y,X, LAYER "
              "(its energy; a layer is a name or early/middle/late), class:NAME, sums such as "
              "'_blocks.9:61 + 0.5*_blocks.12:150 - class:flamingo'; ';' between objectives runs "
              "one per batch slot.", _objective_ok),
        Param("iterations", int, 256, "Iterations.", ITERATIONS),
        recipes.param_choice("fft"),
        recipes.transforms_choice("standard"),
        Param("lr", float, 0.0, "Step size; 0: the parameterization's own (pixel: normalized ascent "
              "0.1; fft, maco: Adam 0.05).", non_negative),
        Param("decay", float, 1.0, "Spectrum scaling 1/f^decay (fft).", non_negative),
        Param("l2", float, 2e-3, "L2 decay on the image per iteration (pixel).", non_negative),
        Param("blur_every", int, 2, "Blur every N iterations (pixel; 0: never).", non_negative),
        Param("blur_sigma", float, 0.6, "Gaussian blur sigma in pixels (pixel).", BLUR_SIGMA),
    ),
    start="noise",
    default_layer=None,
    run=run,
    check=check,
    resolve=lambda params, layer: recipes.resolve_lr(params),
    only_for=recipes.ONLY_FOR,
)
