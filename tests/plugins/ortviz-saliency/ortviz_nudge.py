"""Nudge a photo toward a class, an example third-party technique on ortviz's render loop.

From the photo, climb the target class's raw score (the bundle's ``class_score`` graph at the
logits) through :func:`ortviz.render.loop.optimize`, with the same pieces the built-ins use: an image
parameterization started at the photo (``--param pixel|fft|maco``), a random transform list
(``--transforms none|light|standard``), normalized ascent for pixels or Adam for the spectra.
The question it answers: what, in this photo, would the model need to see more of to call it
the target? (Small steps keep it the photo: an adversarial-looking nudge, not a repainting.)
Only public, documented imports. Registered with::

    [project.entry-points."ortviz.techniques"]
    nudge = "ortviz_nudge:technique"
"""

from __future__ import annotations

from ortviz.bundle.graphs import CLASS_SCORE
from ortviz.render import param as parameterizations
from ortviz.render.loop import graph_objective, optimize
from ortviz.techniques import choices, recipes
from ortviz.techniques.spec import Need, Param, Technique, positive


def run(ctx, iterations, param, transforms, lr):
    photo = ctx.photo_model()                                   # (batch, 3, H, W), model space
    image = parameterizations.make(param, photo.shape, ctx.low, ctx.high, start=photo)
    score = graph_objective(ctx, CLASS_SCORE.name, "logits", class_weights=ctx.one_hot())
    pipeline = recipes.transform_list(ctx, transforms)
    return optimize(ctx, score, image, pipeline, recipes.optimizer(param, lr), iterations).image


technique = Technique(
    name="nudge",
    summary="From a photo, climb the target class's score through the render loop.",
    needs=(Need(CLASS_SCORE, on="logits"),),
    params=(
        Param("iterations", int, 32, "Iterations.", positive),
        choices.param_choice("pixel"),
        choices.transforms_choice("light"),
        Param("lr", float, 0.01, "Step size: normalized ascent (pixel) or Adam (fft, maco).", positive),
    ),
    start="photo",
    run=run,
)
