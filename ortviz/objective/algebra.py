"""Objectives as run-time values: channels, neurons, directions, energies, distances, classes,
and their weighted sums, computed on any format-2 bundle with no re-export.

    from ortviz.objective.algebra import channel, neuron, class_log_prob
    obj = channel("_blocks.9", 61) + 0.5 * neuron("_blocks.12", 150) - class_log_prob("flamingo")
    f = obj.bind(engine)          # or a Context, or an ortviz.Model
    loss, grad = f(x)             # x: NCHW at the model's size; grad is d loss / d x (ascend it)

Every built-in term is linear or diagonal-quadratic in one layer's activation phi, so an
objective over layers l1..lk is k runs of the bundle's ``features`` graphs (each fed its summed
W and A) plus one run of the ``logits`` graph when it names classes, and the gradients add.
A numpy term (:func:`numpy_objective`, e.g. from an ``ortviz.objectives`` plugin) costs one
forward run more: its gradient dL/dphi joins W of the graph of its layer.

Conventions (per image, summed over the batch; a technique ascends the value):
channel: mean of phi[c] over positions; neuron: phi[c, y, x] (centre by default); direction:
mean over positions of <v, phi>; energy: mean(phi^2)/2 (over one channel, or all); distance:
||phi - t||^2 (ascend its negative to approach t); class_score: the logit; class_log_prob: the
log-softmax. Layers are NCHW maps (channel axis 1) or token sequences (N, T, D: channel axis 2,
position = token). Binding (weights for one bundle, evaluation) is :mod:`ortviz.objective.bind`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ortviz.errors import UsageError

if TYPE_CHECKING:  # annotations only: bind imports this module
    from ortviz.objective.bind import Bound


class ObjectiveError(UsageError):
    """An objective that does not fit the bundle (unknown layer, channel out of range, ...)."""


# -- terms ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One primitive: what it reads and how it fills the graphs' weights."""

    kind: str                      # channel neuron direction energy distance score log_prob numpy
    layer: str | None              # None: the logits
    args: tuple = ()
    fn: Callable | None = field(default=None, compare=False)   # numpy terms
    layers: tuple = ()                                          # numpy terms: layers it reads

    def text(self) -> str:
        if self.kind == "channel":
            return f"{self.layer}:{self.args[0]}"
        if self.kind == "neuron":
            n, y, x = self.args
            return f"{self.layer}:{n}@{'c' if y is None else y},{'c' if x is None else x}"
        if self.kind in ("score", "log_prob"):
            return f"class_{'score' if self.kind == 'score' else 'log_prob'}({self.args[0]})"
        if self.kind == "numpy":
            return f"{self.args[0]}({', '.join(map(str, self.layers))})"
        if self.kind == "energy" and self.args[0] is not None:
            return f"energy({self.layer}, {self.args[0]})"
        return f"{self.kind}({self.layer})"


WEIGHT_MAX = float(np.finfo(np.float32).max)


def _number(k) -> float:
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not np.isfinite(float(k)):
        raise TypeError(f"objectives scale by a finite number, not {k!r}")
    return float(k)


class Objective:
    """A weighted sum of terms. ``+``, ``-`` with objectives, ``*`` and ``/`` by numbers."""

    def __init__(self, parts):
        self.parts: tuple[tuple[float, Term], ...] = tuple(parts)

    def __add__(self, other):
        if isinstance(other, numbers.Real) and other == 0:
            return self  # sum() starts from 0
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.parts + other.parts)

    __radd__ = __add__

    def __neg__(self):
        return Objective((-w, t) for w, t in self.parts)

    def __sub__(self, other):
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __mul__(self, k):
        if isinstance(k, Objective):
            raise TypeError("objectives multiply by numbers, not by objectives")
        k = _number(k)
        parts = [(w * k, t) for w, t in self.parts]
        big = max((abs(w) for w, _ in parts), default=0.0)
        if big > WEIGHT_MAX:  # inf included: the graphs' weights are float32
            raise OverflowError(f"a weight of {big:g} is past float32's range (at most "
                                f"{WEIGHT_MAX:.4g})")
        return Objective(parts)

    __rmul__ = __mul__

    def __truediv__(self, k):
        k = _number(k)
        if k == 0:
            raise ZeroDivisionError("objective divided by zero")
        return self * (1.0 / k)

    def __repr__(self):
        return f"Objective({self.text()!r})"

    def text(self) -> str:
        out = ""
        for w, t in self.parts:
            sign = "-" if w < 0 else "+"
            a = abs(w)
            term = t.text() if a == 1 else f"{a:g}*{t.text()}"
            out = f"{'-' if sign == '-' else ''}{term}" if not out else f"{out} {sign} {term}"
        return out or "0"

    def layers(self) -> list[str]:
        """The layers it reads, in order of first appearance (``logits`` for class terms)."""
        seen: list[str] = []
        for _, t in self.parts:
            for layer in (t.layers if t.kind == "numpy" else (t.layer or "logits",)):
                if layer not in seen:
                    seen.append(layer)
        return seen

    def bind(self, target) -> "Bound":
        """``f(x) -> (loss, grad)`` on an Engine, a render Context or an ortviz.Model."""
        return _engine_of(target).bind([self])


def batch(objectives) -> "PerSlot":
    """One objective per batch slot (a bundle exported with ``--batch B``): slot i optimizes
    objectives[i]; spare slots get no gradient."""
    return PerSlot(list(objectives))


@dataclass
class PerSlot:
    objectives: list

    def bind(self, target) -> "Bound":
        return _engine_of(target).bind(self.objectives, per_slot=True)

    def text(self) -> str:
        return "; ".join(o.text() for o in self.objectives)


def _engine_of(target):
    engine = getattr(target, "engine", target)
    if not hasattr(engine, "gradient") or not hasattr(engine, "bundle"):
        raise TypeError(f"bind needs an Engine, a Context or a Model, not {type(target).__name__}")
    return engine


def _term(kind, layer, *args) -> Objective:
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"layer must be a layer name, not {layer!r}")
    return Objective([(1.0, Term(kind, layer, tuple(args)))])


def _index(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{what} must be an integer, not {v!r}")
    return int(v)


# -- the built-in primitives ---------------------------------------------------------------------

def channel(layer: str, n: int) -> Objective:
    """Mean activation of channel ``n`` over the layer's positions."""
    return _term("channel", layer, _index(n, "channel"))


def neuron(layer: str, n: int, y: int | None = None, x: int | None = None) -> Objective:
    """One unit: channel ``n`` at position (y, x), the centre by default (a token layer: y is
    the token, x unused)."""
    return _term("neuron", layer, _index(n, "channel"), None if y is None else _index(y, "y"),
                 None if x is None else _index(x, "x"))


def direction(layer: str, vector) -> Objective:
    """Mean over positions of <vector, phi>: a direction in the layer's channel space."""
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise TypeError("direction vector must be 1-D and finite")
    return _term("direction", layer, tuple(v.tolist()))


def energy(layer: str, channel: int | None = None) -> Objective:
    """mean(phi^2)/2 over the layer (DeepDream's objective), or over one channel."""
    return _term("energy", layer, None if channel is None else _index(channel, "channel"))


def distance(layer: str, target) -> Objective:
    """||phi - target||^2 (per image; ``target`` has the layer's shape, with or without the batch
    axis). Ascend ``-distance(...)`` to approach the target (feature inversion)."""
    t = np.asarray(target, dtype=np.float32)
    if not np.isfinite(t).all():
        raise TypeError("distance target must be finite")
    return Objective([(1.0, Term("distance", layer, (_Frozen(t),)))])


def class_score(c) -> Objective:
    """The logit of class ``c`` (index or name)."""
    return Objective([(1.0, Term("score", None, (c,)))])


def class_log_prob(c) -> Objective:
    """The log-softmax probability of class ``c`` (index or name)."""
    return Objective([(1.0, Term("log_prob", None, (c,)))])


def numpy_objective(name: str, layers, fn) -> Objective:
    """Any objective written in numpy: ``fn(features) -> (loss, grads)`` where ``features`` maps
    each of ``layers`` to its activation (float32, the batch's rows it applies to) and ``grads``
    maps them to d loss / d phi of the same shapes. Runs as forward -> fn -> the layers' graphs."""
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    if not layers or not all(isinstance(l, str) and l for l in layers):
        raise TypeError("numpy_objective needs one or more layer names")
    if not callable(fn):
        raise TypeError("numpy_objective needs a callable fn(features) -> (loss, grads)")
    return Objective([(1.0, Term("numpy", None, (name,), fn=fn, layers=layers))])


class _Frozen:
    """An array held by a term (hashable by identity)."""

    def __init__(self, a: np.ndarray):
        self.a = a

    def __repr__(self):
        return f"array{self.a.shape}"


def layout(shape) -> tuple[int, tuple[int, ...]]:
    """(channel axis, position axes) of a layer of this shape."""
    if len(shape) == 4:
        return 1, (2, 3)
    if len(shape) == 3:
        return 2, (1,)
    if len(shape) == 2:
        return 1, ()
    raise ObjectiveError(f"cannot read channels of a layer of shape {list(shape)}")
