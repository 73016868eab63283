"""What a technique plugin declares (the context its loop runs in: :mod:`ortviz.render.context`).

A technique names the objectives it needs from a bundle (the exporter builds a gradient graph
for each), its typed parameters with defaults and help (the CLI makes options of them), how it
starts (``noise`` or ``photo``), and ``run(ctx, **params) -> image``: the loop itself, written
with the shared pieces of :mod:`ortviz.render.modelspace` and the context's ``grad`` and ``report``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ortviz.bundle.graphs import Alias, Objective


@dataclass(frozen=True)
class Need:
    """One objective a technique needs, and the tensors it is built on.

    ``on`` is ``"logits"`` for classifier-output objectives or ``"layers"`` for one graph per
    layer of the bundle's layer table.
    """

    objective: Objective | Alias
    on: str = "layers"

    def __post_init__(self):
        want = "logits" if self.on == "logits" else "layer"
        if self.on not in ("logits", "layers") or self.objective.reads != want:
            raise ValueError(f"objective {self.objective.name} reads {self.objective.reads}, "
                             f"cannot be built on {self.on!r}")


class ParamError(ValueError):
    """An invalid parameter value, named in one line."""


@dataclass(frozen=True)
class Param:
    """A typed technique parameter. ``check(value)`` returns an error message or None."""

    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    # auto(params) -> the value when the user gives none, where it depends on the other
    # parameters (DeepDream's octaves: 4 for pixels, 1 for the spectra); None: ``default``
    auto: Callable[[dict], Any] | None = field(default=None, compare=False)

    def validate(self, value):
        msg = self.check(value) if self.check else None
        if msg:
            raise ParamError(f"--{self.name.replace('_', '-')} {msg}")
        return value


def positive(v):
    return None if v > 0 else "must be positive"


def non_negative(v):
    return None if v >= 0 else "must not be negative"


def above_one(v):
    return None if v > 1 else "must be greater than 1"


def between(lo, hi):
    """A check for ``lo <= v <= hi`` (caps keep a value from exhausting memory or time)."""
    def check(v):
        if v < lo:
            if lo == 0 or (lo == 1 and isinstance(v, int)):
                return "must not be negative" if lo == 0 else "must be positive"
            return f"must be at least {lo:g}"
        return None if v <= hi else f"must be at most {hi:g}, got {v:g}"
    return check


def scale_ratio(v):
    return None if 1 < v <= 8 else f"must be greater than 1 and at most 8, got {v:g}"


ITERATIONS = between(1, 1_000_000)
JITTER = between(0, 1024)      # and less than the image's side: see ``options``
BLUR_SIGMA = between(0, 32)    # the kernel's radius is 3 sigma
OCTAVES_MAX = 16
OCTAVES = between(1, OCTAVES_MAX)


@dataclass(frozen=True)
class Technique:
    name: str
    summary: str
    needs: tuple[Need, ...]
    params: tuple[Param, ...] = ()
    start: str = "noise"          # "noise" or "photo"
    # write the photo as the technique saw it (cropped, at the model's size) beside the
    # result, NAME-photo.png, for comparison (feature inversion)
    shows_photo: bool = False
    # The layer when the user names none: "early", "middle", "late" (positions in the bundle's
    # layer table, see ortviz.objective.positions) or a layer name; None: "middle" for layer techniques.
    default_layer: str | None = None
    # The technique's own fractions of the layer table for some positions ({"early": 0.2}),
    # over ortviz.objective.positions.POSITIONS: where its recipe gives a good picture.
    positions: dict | None = field(default=None, compare=False)
    # More help for the command (the default recipe and why), after the summary.
    description: str = field(default="", compare=False)
    # resolve(params, layer) -> params as the run uses them: automatic values (an lr of 0: the
    # parameterization's own; an empty objective: the layer's) made explicit, so the sidecar
    # records what was used; the run must give the same picture with either. A resolve with a
    # third parameter also gets the bundle's layer table (feature inversion's octaves by depth)
    resolve: Callable[..., dict] | None = field(default=None, repr=False, compare=False)
    run: Callable[..., np.ndarray] | None = field(default=None, repr=False, compare=False)
    # check(bundle, params) before any work: raise a UsageError (one line) for what the
    # parameters cannot do on this bundle (an objective string naming a missing layer, ...)
    check: Callable[..., None] | None = field(default=None, repr=False, compare=False)
    # options only one --param or --transforms reads: {"l2": ("param", "pixel"), ...}; given
    # with another, the run is refused (``choices.check_applies``) rather than ignoring them
    only_for: dict = field(default_factory=dict, compare=False)
    # results(bundle, params) -> n: how many results a run without class targets gives (one per
    # batch slot, NAME-0.png ... NAME-n-1.png), so their files are planned, checked and locked
    # with the output set before the run; None: one (more are checked and locked as they come)
    results: Callable[..., int] | None = field(default=None, repr=False, compare=False)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def resolved(self, params: dict, layer: str | None, layers: list[dict]) -> dict:
        """``params`` as the run uses them (``resolve`` applied, if the technique has one)."""
        if self.resolve is None:
            return dict(params)
        wants_layers = len(inspect.signature(self.resolve).parameters) >= 3
        return dict(self.resolve(dict(params), layer, layers) if wants_layers
                    else self.resolve(dict(params), layer))

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)
