"""Feature inversion (Mahendran & Vedaldi, CVPR 2015) and Lucid's caricature.

From a neutral start, descend on ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at a layer, where
phi(x0) are the photo's features from the bundle's forward graph, through
:func:`ortviz.render.loop.optimize`. ``--match caricature`` instead climbs the photo's own activation
pattern (Lucid's ``dot_compare``): <phi(x), phi(x0)> / ||phi(x0)||^2 times the cosine of the
two to the power ``--cossim-pow``, which amplifies what the layer sees in the photo rather than
copying it. The image is a parameterization (``--param``: pixels, or a 1/f spectrum with
decorrelated colour), seen through random transforms (``--transforms``), under total
variation, alpha-norm and L2 penalties (Mahendran & Vedaldi's natural-image priors); Adam's
step falls along a cosine schedule to ``--lr-end`` times ``--lr``; the picture starts coarse
and is carried up (``--octaves``: each scale starts from the last one's picture, resized).
``--fit`` says how the photo is brought to the model's square input; the photo as the network
saw it is written beside the result.
"""

from __future__ import annotations

import numpy as np

from ortviz.bundle.graphs import FEATURE_DISTANCE
from ortviz.objective.positions import resolve_layer
from ortviz.render import modelspace
from ortviz.render.loop import optimize
from ortviz.render.modelspace import FITS
from ortviz.render.optim import Adam, Scheduled, cosine_schedule
from ortviz.techniques import choices, recipes
from ortviz.techniques.spec import (BLUR_SIGMA, ITERATIONS, JITTER, OCTAVES_MAX, Need, Param, Technique,
                                    between, non_negative, positive, scale_ratio)

MATCHES = ("distance", "caricature")
# Where the recipe gives a good picture (bench/inversion.py, docs/quality.md): earlier than the shared
# positions; on EfficientNet-Lite0 _blocks.4, _blocks.8 and _blocks.10.
POSITIONS = {"early": 0.3, "middle": 0.5, "late": 0.6}
# --octaves 0 (the default): coarse to fine over 3 octaves before the middle position and 4 from it
# on, where a coarser start keeps more of the photo's colour (docs/quality.md, issue 22's third round)
OCTAVES_BY_DEPTH = (3, 4)
DESCRIPTION = ("Default recipe (chosen on two photos, measured on 24 others; the measurements are on "
               "the documentation's Feature inversion page): the photo padded to the model's square "
               "(--fit pad); the natural parameterization (a 1/f^1.5 spectrum with decorrelated "
               "colour and a sigmoid), coarse to fine over 3 octaves (ratio 1.6) of 100 Adam steps "
               "(lr 0.05) each (4 octaves from the middle position on), on the normalized "
               "distance |phi(x) - phi0|^2 / |phi0|^2, with total "
               "variation 3 (beta 2) per pixel and no transforms. Layer positions are this "
               "technique's own (early, middle, late: 0.3, 0.5, 0.6 of the layer table), where the "
               "recipe gives a good picture.")


def _penalties(size: int, l2, tv, tv_beta, alpha_norm, alpha) -> list:
    """The image penalties, each per pixel: ``x -> (value, grad)``."""
    out = []
    if l2:
        out.append(lambda x: (l2 * float((x * x).sum()), modelspace.l2_grad(x, l2)))
    if tv:
        def tv_pen(x):
            v, g = modelspace.tv_loss_and_grad(x, tv_beta)
            return tv * v / size, (tv / size) * g
        out.append(tv_pen)
    if alpha_norm:
        def alpha_pen(x):
            v, g = modelspace.alpha_norm_loss_and_grad(x, alpha)
            return alpha_norm * v / size, (alpha_norm / size) * g
        out.append(alpha_pen)
    return out


# the pixel-only, fft-only and light-transforms-only options (here the L2 penalty applies to every
# parameterization, and coarse to fine too: --octave-scale is read whatever --param)
ONLY_FOR = {k: v for k, v in choices.ONLY_FOR.items() if k not in ("l2", "octave_scale")}


def distance(ctx, layer: str, target: np.ndarray):
    """``x -> (||phi(x) - t||^2 / ||t||^2, gradient)``: the normalized distance to ``t``."""
    scale = float((target.astype(np.float64) ** 2).sum()) or 1.0

    def f(x):
        step = ctx.grad(FEATURE_DISTANCE.name, layer, x, target_features=target)
        return step.loss / scale, step.grad / scale
    return f


def caricature_value(phi: np.ndarray, target: np.ndarray, cossim_pow: float):
    """Lucid's ``dot_compare`` per batch slot, summed: ``d * c**p`` with ``d = <phi, t> / ||t||^2``
    and ``c`` their cosine (floored at 1e-6 inside the power); returns the value and its
    gradient with respect to ``phi`` (float64)."""
    phi = phi.astype(np.float64).reshape(len(phi), -1)
    t = target.astype(np.float64).reshape(len(target), -1)
    tn = np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
    pn = np.linalg.norm(phi, axis=1, keepdims=True) + 1e-12
    dot = (phi * t).sum(axis=1, keepdims=True)
    d, c = dot / tn ** 2, dot / (pn * tn)
    cp = np.maximum(c, 1e-6)
    grad = cp ** cossim_pow * t / tn ** 2
    if cossim_pow:
        dc = t / (pn * tn) - c * phi / pn ** 2
        grad = grad + np.where(c > 1e-6, cossim_pow * d * cp ** (cossim_pow - 1), 0.0) * dc
    return float((d * cp ** cossim_pow).sum()), grad.reshape(target.shape)


def caricature(ctx, layer: str, target: np.ndarray, cossim_pow: float):
    """``x -> (caricature_value, gradient)``. The layer's gradient graph only knows distances,
    whose gradient is ``2 J^T (phi(x) - t)``: a target ``phi(x) - k W / 2`` gives ``k J^T W``
    for any ``W`` (``k`` scales ``W`` to ``phi``'s size, so float32 keeps its digits)."""
    def f(x):
        phi = ctx.engine.features(x, layer)
        value, w = caricature_value(phi, target, cossim_pow)
        k = (np.linalg.norm(phi) or 1.0) / (np.linalg.norm(w) or 1.0)
        shifted = (phi.astype(np.float64) - 0.5 * k * w).astype(np.float32)
        step = ctx.grad(FEATURE_DISTANCE.name, layer, x, target_features=shifted)
        return value, step.grad / k
    return f


def run(ctx, iterations, fit, match, cossim_pow, param, transforms, jitter, zoom, lr, lr_end,
        decay, l2, tv, tv_beta, alpha_norm, alpha, blur_every, blur_sigma, octaves, octave_scale):
    target = ctx.engine.features(ctx.photo_model(), ctx.layer)
    f = distance(ctx, ctx.layer, target) if match == "distance" else \
        caricature(ctx, ctx.layer, target, cossim_pow)
    ts = recipes.transform_list(ctx, transforms, jitter, zoom)
    after = recipes.pixel_after_step(0.0, blur_every, blur_sigma) if param == "pixel" else None
    x = None
    for k, hw in enumerate(modelspace.octave_sizes(ctx.size, octaves, octave_scale)):
        # coarse to fine (octaves >= 1: resolve made the default explicit): each octave starts
        # from the last one's picture, resized
        p = recipes.parameterization(ctx, param, hw, decay, start=x)
        opt = Scheduled(Adam(lr), cosine_schedule(lr, lr_end, iterations))
        pens = _penalties(3 * hw[0] * hw[1], l2, tv, tv_beta, alpha_norm, alpha)
        x = optimize(ctx, f, p, ts, opt, iterations, pens, start=k * iterations,
                     maximize=match != "distance", after_step=after).image
    return x


def octaves_for(layers: list[dict], layer: str) -> int:
    """What ``--octaves 0`` means at ``layer``: :data:`OCTAVES_BY_DEPTH`'s first value before
    this technique's ``middle`` position in the layer table, its second from it on."""
    names = [entry["name"] for entry in layers]
    middle = names.index(resolve_layer(layers, "middle", POSITIONS))
    deep = layer in names and names.index(layer) >= middle
    return OCTAVES_BY_DEPTH[deep]


def resolve(params: dict, layer: str | None, layers: list[dict]) -> dict:
    """``--octaves 0`` made explicit (:func:`octaves_for`), so the sidecar records the count."""
    if not params["octaves"] and layer is not None:
        params["octaves"] = octaves_for(layers, layer)
    return params


def _one_of(choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


technique = Technique(
    name="feature-inversion",
    summary="From a neutral start, reconstruct a photo from its features at a layer "
            "(or, --match caricature, amplify them).",
    needs=(Need(FEATURE_DISTANCE, on="layers"),),
    params=(
        Param("iterations", int, 100, "Iterations per octave.", ITERATIONS),
        Param("fit", str, "pad", "How the photo becomes the model's square input: pad (the whole "
              "photo, on a grey border), whole (the whole photo, stretched) or crop (the centre; "
              "the sides of a wide photo are cut).", _one_of(FITS)),
        Param("match", str, "distance", "distance: match the photo's features (inversion); "
              "caricature: climb <phi, phi0>/|phi0|^2 * cos(phi, phi0)^cossim-pow (Lucid).",
              _one_of(MATCHES)),
        Param("cossim_pow", float, 1.0, "Power of the cosine in caricature mode (0: the plain dot "
              "product).", between(0, 16)),
        choices.param_choice("natural"),
        choices.transforms_choice("none"),
        Param("jitter", int, 4, "Largest random circular shift (light transforms).", JITTER),
        Param("zoom", float, 0.0, "Random zoom about the center, up to +-this fraction (light "
              "transforms; 0: none).", lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("lr", float, 0.05, "Adam step size (at the first iteration of each octave).", positive),
        Param("lr_end", float, 1.0, "Step size at the last iteration, as a fraction of --lr "
              "(a cosine schedule; 1: constant).", between(0, 1)),
        Param("decay", float, 1.0, "Spectrum scaling 1/f^decay (fft).", non_negative),
        Param("l2", float, 0.0, "L2 penalty on the image.", non_negative),
        Param("tv", float, 3.0, "Total-variation weight (per pixel).", non_negative),
        Param("tv_beta", float, 2.0, "Total-variation exponent beta.", positive),
        Param("alpha_norm", float, 0.0, "Alpha-norm weight (per pixel).", non_negative),
        Param("alpha", float, 6.0, "Alpha-norm exponent.", between(1, 64)),
        Param("blur_every", int, 0, "Blur every N iterations (pixel; 0: never).", non_negative),
        Param("blur_sigma", float, 0.5, "Gaussian blur sigma in pixels (pixel).", BLUR_SIGMA),
        Param("octaves", int, 0, "Scales, smallest first, each --iterations long (coarse to "
              "fine: each starts from the last one's picture, resized; any --param); 0: by depth, "
              "3 before the middle position and 4 from it on.", between(0, OCTAVES_MAX)),
        Param("octave_scale", float, 1.6, "Size ratio between octaves.", scale_ratio),
    ),
    start="photo",
    shows_photo=True,
    default_layer="early",
    positions=POSITIONS,
    description=DESCRIPTION,
    resolve=resolve,
    run=run,
    only_for=ONLY_FOR,
)
