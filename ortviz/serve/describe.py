"""What the page is told about a bundle, and the step graphs it runs.

:func:`describe` is the JSON the page starts from: the model's input, its value range, layers,
labels and gradient graphs, the feature-visualization recipe (the CLI's default: the ``fft``
parameterization with decorrelated colour and a sigmoid, Adam 0.05, Lucid's ``standard``
transforms, serialized from the same Python objects) and DeepDream's (pixel ascent with
normalized steps and a circular jitter at the model's input size, the CLI's step size and jitter).

:func:`step_models` builds the ``param``, ``pre`` and ``post`` graphs of
:class:`ortviz.render.stepgraph.Recipe` for that recipe: one feature-visualization step in the page is
``pre``, the objective's gradient graphs and ``post``, as ``--step graph`` runs it.
"""

from __future__ import annotations

from ortviz.objective.algebra import layout
from ortviz.objective.positions import resolve_layer
from ortviz.render import transforms as tf
from ortviz.render.modelspace import _stats, grey, valid_range
from ortviz.render.optim import Adam
from ortviz.render.param import make
from ortviz.render.stepgraph import Recipe
from ortviz.render.stepgraph.plans import fill_value
from ortviz.techniques import deepdream, feature_visualization
from ortviz.techniques.choices import AUTO_LR


def _cli_defaults(technique, names) -> dict:
    """The CLI's defaults of ``names``, read from the technique's declaration."""
    defaults = technique.defaults()
    return {n: defaults[n] for n in names}


def deepdream_defaults() -> dict:
    """DeepDream's iterations, step size and jitter as the CLI declares them (the page's recipe)."""
    return _cli_defaults(deepdream.technique, ("iterations", "lr", "jitter"))


def transforms_of(bundle) -> list:
    """Lucid's standard transform list for ``bundle`` (the pad's fill is its mean grey)."""
    pre = bundle.manifest["preprocessing"]
    return tf.preset("standard", fill=grey(pre["mean"], pre["std"]))


def _transform_json(t) -> dict:
    """One transform as the page's draw (static/draw.js) takes it."""
    if isinstance(t, tf.Pad):
        return {"type": "pad", "size": t.size}
    if isinstance(t, tf.RandomCrop):
        return {"type": "crop", "d": t.d}
    if isinstance(t, tf.RandomScale):
        return {"type": "scale", "scales": [float(s) for s in t.scales]}
    if isinstance(t, tf.RandomRotate):
        return {"type": "rotate", "angles": [float(a) for a in t.angles]}
    if isinstance(t, tf.Jitter):
        return {"type": "jitter", "d": t.d}
    raise ValueError(f"the page has no draw for {type(t).__name__}")


def fft_param(bundle):
    """The fft parameterization at the model's input size, as the CLI makes it."""
    pre = bundle.manifest["preprocessing"]
    low, high = valid_range(pre["mean"], pre["std"])
    return make("fft", tuple(int(v) for v in bundle.input["shape"]), low, high)


def recipe_of(bundle) -> Recipe:
    """The step graphs' recipe: the fft parameterization at the model's input size, standard
    transforms, Adam at the CLI's learning rate, maximizing."""
    param = fft_param(bundle)
    return Recipe.of(param, param.shape[2:], fill_value(transforms_of(bundle)), -1.0, Adam(AUTO_LR["fft"]))


def step_models(r: Recipe) -> dict:
    """``{"param": bytes, "pre": bytes, "post": bytes}``: the serialized step graphs of ``r``
    (:func:`recipe_of`)."""
    return {"param": r.param().SerializeToString(), "pre": r.warp().SerializeToString(),
            "post": r.post().SerializeToString()}


def _channels(shape) -> int | None:
    try:
        return int(shape[layout(shape)[0]])
    except Exception:     # a layer without channels (the page lists it without)
        return None


def describe(bundle, r: Recipe) -> dict:
    """The JSON the page starts from (see the module); ``r``: :func:`recipe_of` the bundle."""
    m = bundle.manifest
    pre = m["preprocessing"]
    mean, std = _stats(pre["mean"], pre["std"])
    low, high = valid_range(pre["mean"], pre["std"])
    ts = transforms_of(bundle)
    mode, value = tf.boundary(ts)
    layers = [{"name": l["name"], "shape": l["shape"], "channels": _channels(l["shape"])}
              for l in m["layers"]]
    middle = resolve_layer(m["layers"], "middle") if m["layers"] else None
    return {
        "name": m["model"]["name"],
        "bundle_id": m.get("bundle_id"),
        "input": {"name": m["input"]["name"], "shape": m["input"]["shape"]},
        "mean": mean.reshape(-1).tolist(), "std": std.reshape(-1).tolist(),
        "low": low.reshape(-1).tolist(), "high": high.reshape(-1).tolist(),
        "labels": m["labels"],
        "layers": layers,
        "graphs": [{"file": g["file"], "objective": g["objective"], "layer": g["layer"],
                    "inputs": g["inputs"], "outputs": g["outputs"]} for g in m["graphs"]],
        "files": sorted(m["files"]),
        "weights": [m["weights"]] if isinstance(m["weights"], str) else list(m["weights"]),
        "feature_viz": dict(_cli_defaults(feature_visualization.technique, ("iterations", "objective")),
                            planar_shape=list(r.planar_shape), init_std=fft_param(bundle).inner.init_std,
                            lr=r.lr, b1=r.b1, b2=r.b2, boundary=mode,
                            transforms=[_transform_json(t) for t in ts],
                            steps={k: f"steps/{k}.onnx" for k in ("param", "pre", "post")}),
        "deepdream": dict(deepdream_defaults(),
                          layer=middle, photo="photo.png"),
    }
