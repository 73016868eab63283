"""Feature visualization (Erhan et al. 2009; Olah et al. 2017): from noise, climb any objective.

The objective is a value of :mod:`ortviz.objective.algebra` or its string (``--objective``): a channel
(``_blocks.10:5``), a neuron (``_blocks.10:5@3,4``), a layer's energy (``_blocks.10``), a class
(``class:flamingo``), sums and differences of these, or a plugin's numpy objective. Several
objectives separated by ``;`` run at once, one per batch slot, on a bundle exported with
``--batch``; each slot is its own result. It runs on the render loop (:mod:`ortviz.render.loop`) with an
image parameterization (``--param``, default the 1/f Fourier spectrum with decorrelated colour)
and Lucid's standard random transforms; the pixel parameterization keeps normalized ascent,
L2 decay and blur.

What an atlas shows for a unit (Olah et al. 2017, Fel et al. 2023):

- ``--negative``: the objective descended instead of climbed (what the unit is most against);
- ``--diversity K``: K pictures of the one objective that differ, Lucid's diversity term on the
  Gram matrices of a layer's activations (:mod:`ortviz.objective.diversity`); written as NAME-0.png ..
  NAME-{K-1}.png, each sidecar with the K x K cosine similarities of the final pictures;
- ``--transparency``: MACO's transparency map (accumulated |gradient|, :mod:`ortviz.render.transparency`)
  as the PNG's alpha channel.

Dead units: a ReLU-like unit that is off everywhere at the start gives no gradient. Where the
layer's pre-activation is a layer of the bundle (:mod:`ortviz.objective.preactivation`), each step whose
gradient is zero in a slot climbs the same unit of the pre-activation instead (``--warm-up``, on
by default), until the unit turns on; a negative picture of a unit that is off descends its
pre-activation (what is most against it). A slot whose objective never had a gradient (nor, for
a negative picture, its pre-activation) ends with the status ``blank: ...`` instead of
``complete``.
"""

from __future__ import annotations

import numpy as np

from ortviz.errors import UsageError
from ortviz.objective.algebra import Objective, ObjectiveError, PerSlot
from ortviz.objective.coerce import as_objectives
from ortviz.objective.diversity import Diverse, Stacked, similarity
from ortviz.objective.positions import resolve_layer
from ortviz.objective.preactivation import WarmUp, surrogate
from ortviz.render.loop import optimize
from ortviz.render.modelspace import resize
from ortviz.render.transparency import Transparency
from ortviz.techniques import choices, recipes
from ortviz.techniques.spec import BLUR_SIGMA, ITERATIONS, Param, Technique, between, non_negative

DIVERSITY = between(1, 16)

DEFAULT = "middle:0"  # channel 0 of the middle layer, on any bundle (ortviz.objective.positions)


def diversity_layer(bundle, obj, name: str) -> str:
    """The diversity term's layer: ``name`` (a layer or early/middle/late), or the objective's
    first layer, or (a class objective) the middle layer."""
    if not name:
        name = next((l for l in obj.layers() if l != "logits"), "middle")
    try:
        return resolve_layer(bundle.layers, name)
    except UsageError as exc:
        raise ObjectiveError(f"--diversity-layer: {exc}") from None


def check(bundle, params) -> None:
    objs = as_objectives(params["objective"], bundle)
    k = params.get("diversity", 1)
    if k > 1 and len(objs) > 1:
        raise ObjectiveError(f"--diversity {k} takes one objective, not {len(objs)} "
                             "(';' runs one per batch slot)")
    if k > 1 or params.get("diversity_layer"):   # a wrong name is an error even when unused
        diversity_layer(bundle, objs[0], params.get("diversity_layer", ""))


def results(bundle, params) -> int:
    """One result per objective (``A; B``: NAME-0.png, NAME-1.png), or per picture of a
    diversity set (``--diversity K``: NAME-0 .. NAME-{K-1})."""
    k = params.get("diversity", 1)
    return k if isinstance(k, int) and k > 1 else len(as_objectives(params["objective"], bundle))


def _objective(ctx, objs, negative, diversity, diversity_layer_name, diversity_weight, warm_up):
    """The loop's objective (with the warm-up) and the diversity set's evaluator or None."""
    engine = ctx.engine
    warm = [surrogate(engine.bundle, o) for o in objs] if warm_up else None
    if diversity > 1:
        ctx.carry(diversity)
        layer = diversity_layer(engine.bundle, objs[0], diversity_layer_name)
        div = Diverse(engine, objs[0], layer, diversity_weight, -1.0 if negative else 1.0)
        f_warm = Stacked(engine, warm[0]) if warm and warm[0] is not None else None
        return WarmUp(div, f_warm, diversity, probe=div.stacked_alone()), div
    f = ctx.bind(objs if len(objs) > 1 else objs[0])
    f_warm = None
    if warm and any(w is not None for w in warm):
        # a slot without a surrogate gets no warm-up gradient (zero): it keeps its own
        per_slot = [w if w is not None else 0 * o for w, o in zip(warm, objs)]
        f_warm = ctx.bind(per_slot if len(objs) > 1 else per_slot[0])
    return WarmUp(f, f_warm, len(objs)), None


def run(ctx, objective, iterations, param, transforms, lr, decay, l2, blur_every, blur_sigma,
        negative=False, diversity=1, diversity_weight=10.0, diversity_layer="", transparency=False,
        warm_up=True):
    objs = as_objectives(objective, ctx.engine.bundle)
    f, div = _objective(ctx, objs, negative, diversity, diversity_layer, diversity_weight, warm_up)
    seen = Transparency() if transparency else None
    ts = recipes.transform_list(ctx, transforms)
    common = dict(maximize=not negative, on_gradient=seen)
    after = recipes.pixel_after_step(l2, blur_every, blur_sigma) if param == "pixel" else None
    p = recipes.parameterization(ctx, param, ctx.size, decay)
    out = optimize(ctx, f, p, ts, recipes.optimizer(param, lr), iterations, after_step=after, **common)
    _mark(ctx, out.image, objs, f, div, seen, iterations, negative)
    return out.image


def _mark(ctx, image, objs, f, div, seen, iterations, negative) -> None:
    """Each slot's status (``blank``), alpha channel and sidecar entries."""
    sim = None
    if div is not None:
        x = image if tuple(image.shape[2:]) == ctx.size else resize(image, ctx.size)
        sim = similarity(div.activations(x.astype(np.float32)))
    for i in range(len(f.alive)):
        text = objs[min(i, len(objs) - 1)].text()
        meta = {"warm_up_steps": f.warm_steps[i]} if f.warm is not None else {}
        if sim is not None:
            others = [float(v) for j, v in enumerate(sim[i]) if j != i]
            meta["diversity"] = {"pictures": len(sim), "index": i, "layer": div.layer,
                                 "weight": div.weight,
                                 "gram_cosine_similarity": [[round(float(v), 6) for v in row]
                                                            for row in sim],
                                 "mean_similarity_to_others": round(sum(others) / len(others), 6)}
        # a negative picture of a unit that is off descends its pre-activation: not blank
        moved = f.alive[i] or (negative and f.warm_alive[i])
        status = None if moved else (
            f"blank: {text} gave no gradient in any of {iterations} iterations (a dead unit: "
            "off at every position the run tried); the picture is its start")
        ctx.mark(i, status=status, alpha=None if seen is None else seen.alpha(i), **meta)


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
        choices.param_choice("fft"),
        choices.transforms_choice("standard"),
        Param("lr", float, 0.0, "Step size; 0: the parameterization's own (pixel: normalized ascent "
              "0.1; fft, maco: Adam 0.05).", non_negative),
        Param("decay", float, 1.0, "Spectrum scaling 1/f^decay (fft).", non_negative),
        Param("l2", float, 2e-3, "L2 decay on the image per iteration (pixel).", non_negative),
        Param("blur_every", int, 2, "Blur every N iterations (pixel; 0: never).", non_negative),
        Param("blur_sigma", float, 0.6, "Gaussian blur sigma in pixels (pixel).", BLUR_SIGMA),
        Param("negative", bool, False, "Descend the objective instead (the negative picture: "
              "what the unit is most against)."),
        Param("diversity", int, 1, "K > 1: K pictures of the objective that differ (Lucid's "
              "diversity term on a layer's Gram matrices), NAME-0.png .. NAME-{K-1}.png; their "
              "pairwise similarity is in each sidecar.", DIVERSITY),
        Param("diversity_weight", float, 10.0, "Weight of the diversity term against the "
              "objective (on _blocks.10:5, K=3: 10 keeps 91% of the objective and halves the "
              "pictures' Gram similarity; 100 makes them unlike at half the objective).",
              non_negative),
        Param("diversity_layer", str, "", "Layer of the diversity term (a name or early, middle, "
              "late; default: the objective's first layer)."),
        Param("transparency", bool, False, "Write MACO's transparency map (accumulated "
              "|gradient|) as the PNG's alpha channel."),
        Param("warm_up", bool, True, "Where a ReLU-like unit gives no gradient, climb its "
              "pre-activation layer's unit until it does (the layers that have one in the "
              "bundle)."),
    ),
    start="noise",
    default_layer=None,
    run=run,
    resolve=choices.resolve_lr,
    check=check,
    only_for=choices.ONLY_FOR,
    results=results,
)
