"""The Python API, mirroring the CLI.

    import ortviz
    model = ortviz.load()                        # the embedded EfficientNet-Lite0
    r = model.class_visualization("flamingo", iterations=50)
    r.image          # HxWx3 uint8;  r.top5, r.history, r.status, r.meta (the sidecar's content)
    r                # in Jupyter: the picture, captioned; a list of them (Pictures): a grid
    r.to_pil(), r.show()
    model.deepdream(layer="_blocks.10").save("dream.png")   # writes the image and its sidecar

    from ortviz.objective.algebra import channel, direction, class_log_prob
    model.feature_visualization(channel("_blocks.9", 61) - 0.5 * class_log_prob("flamingo"))
    model.feature_visualization("_blocks.10:5")              # the CLI's strings work too
    f = channel("_blocks.10", 5).bind(model)                 # f(x) -> (loss, grad), x NCHW
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.engine.sessions import Engine
from ortviz.errors import UsageError
from ortviz.objective.coerce import as_objectives
from ortviz.pictures import Picture, Pictures
from ortviz.render import modelspace
from ortviz.render.context import Result, top5
from ortviz.run import imagefiles
from ortviz.run.runner import RunRequest, each_result, prepare, run_info
from ortviz.run.write import sidecar
from ortviz.techniques.registry import techniques
from ortviz.techniques.spec import ParamError


class Model:
    """A bundle opened on an execution provider, with a method per technique. Made by
    :func:`ortviz.load`; every technique's options are keyword arguments of its method."""

    def __init__(self, bundle=None, provider: str = "auto", threads: int | None = None,
                 step: str = "auto"):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle or default_bundle())
        self.engine = Engine(self.bundle, provider=provider, threads=threads, step=step)

    def run(self, technique: str, *, layer=None, target=None, image=None, seed: int = 0,
            snapshot_every: int = 0, progress: bool = True, **params):
        """Run any installed technique by name; ``params`` are its declared parameters.

        ``image``: a path, an HxWx3 uint8 array or a PIL image. ``target``: a class index or
        name, or a list of them; a list gives :class:`Pictures` (one per class, batched up to
        the bundle's batch), anything else one :class:`Picture`. ``progress``: show progress
        (a bar on a terminal or in a notebook, periodic lines otherwise; see
        :mod:`ortviz.run.progress`); False: none."""
        try:
            return self._run(technique, layer, target, image, seed, snapshot_every, progress, params)
        except (ParamError, UsageError) as exc:  # the CLI's words (--iterations) as Python's
            raise type(exc)(api_words(str(exc))) from None

    def _run(self, technique, layer, target, image, seed, snapshot_every, progress, params):
        techs = techniques()
        if technique not in techs:
            raise KeyError(f"no technique {technique!r}; installed: {', '.join(techs)}")
        tech = techs[technique]
        unknown = set(params) - {p.name for p in tech.params}
        if unknown:
            raise TypeError(f"{technique} has no parameter {sorted(unknown)[0]!r}")
        values = {p.name: p.validate(params.get(p.name, p.default)) for p in tech.params}
        many = isinstance(target, (list, tuple))
        wanted = list(target) if many else [] if target is None else [target]
        req = RunRequest(technique=tech, params=values, model=self.bundle.root, layer=layer,
                         targets=wanted, image=_rgb(image) if isinstance(image, Image.Image) else image,
                         seed=seed, provider=self.engine.provider, threads=self.engine.threads,
                         step=self.engine.step, snapshot_every=snapshot_every, progress=progress,
                         given=frozenset(params))
        _, layer, targets, photo, _ = prepare(
            req, warn=lambda m: print(f"warning: {api_words(m)}", file=sys.stderr))
        shown = {k: _plain_param(v) for k, v in req.params.items()}  # as resolved by prepare
        pictures = Pictures()
        for t, _, result in each_result(req, self.engine, layer, targets, photo):
            meta = sidecar(result, tech.name, shown, run_info(req, self.engine, layer, t), self.bundle)
            pictures.append(Picture(result, meta))
        return pictures if many or len(pictures) > 1 else pictures[0]

    def class_visualization(self, target=None, **kw):
        """One picture for a class (default: the bundle's default class), a list for a list."""
        return self.run("class-visualization", target=target, **kw)

    def feature_inversion(self, image=None, layer=None, **kw) -> Picture:
        """Reconstruct ``image`` (default: the bundled photo) from its features at ``layer``
        (default: the early layer)."""
        return self.run("feature-inversion", image=image, layer=layer, **kw)

    def deepdream(self, image=None, layer=None, **kw) -> Picture:
        """Amplify what ``layer`` (default: the middle layer) sees in ``image`` (default: the
        bundled photo)."""
        return self.run("deepdream", image=image, layer=layer, **kw)

    def feature_visualization(self, objective=None, **kw):
        """Climb ``objective`` from noise: a string (``"_blocks.9:61 + class:flamingo"``), a
        value of :mod:`ortviz.objective.algebra`, or a list of them (one per batch slot: a list of
        pictures comes back). Default: channel 0 of the middle layer."""
        if objective is not None:
            kw["objective"] = objective
        return self.run("feature-visualization", **kw)

    def objective(self, text: str):
        """An objective string parsed and checked against this bundle (see ortviz.objective.algebra);
        ``A; B`` (one per batch slot) gives a list."""
        objs = as_objectives(text, self.bundle)
        return objs if len(objs) > 1 else objs[0]

    def classify(self, image) -> list[dict]:
        """Top-5 classes of a photo (a path, an HxWx3 uint8 array or a PIL image), cropped
        to the model's aspect around its centre as the techniques see it."""
        pre = self.bundle.manifest["preprocessing"]
        return top5(self.engine, modelspace.to_model(_rgb(image), pre["mean"], pre["std"],
                                                  size=tuple(self.engine.image_shape[2:]),
                                                  crop=True))[0]


def _rgb(image) -> np.ndarray:
    """HxWx3 uint8 RGB from a path, an array or a PIL image."""
    if isinstance(image, np.ndarray):
        return imagefiles.check_rgb(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, (str, Path)):
        return imagefiles.load_image(image)
    raise TypeError(f"image must be a path, an HxWx3 uint8 array or a PIL image, "
                    f"not {type(image).__name__}")


# the CLI's options that the Python API names otherwise
_API_NAMES = {"class": "target"}


def api_words(message: str) -> str:
    """A message in the CLI's words in the API's: ``--iterations`` -> ``iterations``,
    ``--octaves 2`` -> ``octaves=2``, ``--class`` -> ``target``."""
    def word(m):
        name = m.group(1)
        name = _API_NAMES.get(name, name.replace("-", "_"))
        return name + (f"={m.group(2)}" if m.group(2) else "")
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)(?: (-?\d[\w.+-]*))?", word, message)


def _plain_param(value):
    """Objective values are written to the sidecar as their strings."""
    if hasattr(value, "text") and callable(value.text):
        return value.text()
    if isinstance(value, (list, tuple)):
        return [_plain_param(v) for v in value]
    return value


def load(bundle=None, provider: str = "auto", threads: int | None = None,
         step: str = "auto") -> Model:
    """Open a bundle (default: the embedded EfficientNet-Lite0) on ``provider`` (``auto``,
    ``cpu``, ``cuda``, ``openvino``, ...) with ``threads`` intra-op threads. ``step``: where
    the numpy side of a render step runs, ``numpy``, ``graph`` (ONNX graphs on the same
    provider, :mod:`ortviz.render.stepgraph`) or ``auto`` (the faster on that provider)."""
    return Model(bundle, provider=provider, threads=threads, step=step)
