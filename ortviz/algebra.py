"""Objectives as run-time values: channels, neurons, directions, energies, distances, classes,
and their weighted sums, computed on any format-2 bundle with no re-export.

    from ortviz.algebra import channel, neuron, class_log_prob
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
position = token).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import UsageError
from .objectives import FEATURES, LOGITS


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
        return Objective((w * k, t) for w, t in self.parts)

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
        return Bound(_engine_of(target), [self])


def batch(objectives) -> "PerSlot":
    """One objective per batch slot (a bundle exported with ``--batch B``): slot i optimizes
    objectives[i]; spare slots get no gradient."""
    return PerSlot(list(objectives))


@dataclass
class PerSlot:
    objectives: list

    def bind(self, target) -> "Bound":
        return Bound(_engine_of(target), self.objectives, per_slot=True)

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


# -- binding: the graphs' weights for one bundle -------------------------------------------------

def layout(shape) -> tuple[int, tuple[int, ...]]:
    """(channel axis, position axes) of a layer of this shape."""
    if len(shape) == 4:
        return 1, (2, 3)
    if len(shape) == 3:
        return 2, (1,)
    if len(shape) == 2:
        return 1, ()
    raise ObjectiveError(f"cannot read channels of a layer of shape {list(shape)}")


class Bound:
    """An objective bound to an engine: ``f(x) -> (loss, grad)`` at the model's input size."""

    def __init__(self, engine, objectives: list, per_slot: bool = False):
        self.engine = engine
        bundle = engine.bundle
        self.batch = int(engine.image_shape[0])
        if per_slot and len(objectives) > self.batch:
            raise ObjectiveError(f"{len(objectives)} objectives for a batch of {self.batch} "
                                 "(export with --batch to run more at once)")
        self.shapes = {l["name"]: tuple(l["shape"]) for l in bundle.layers}
        self.tensors = {l["name"]: l["tensor"] for l in bundle.layers}
        self.classes = len(bundle.labels)
        self.W: dict[str, np.ndarray] = {}
        self.A: dict[str, np.ndarray] = {}
        self.const = 0.0
        self.logits: dict[str, np.ndarray] = {}
        self.numpy: list[tuple[float, Term, list[int]]] = []
        slots_of = ([[i] for i in range(len(objectives))] if per_slot
                    else [list(range(self.batch))])
        for obj, rows in zip(objectives, slots_of):
            if not isinstance(obj, Objective):
                raise TypeError(f"not an objective: {obj!r}")
            for w, t in obj.parts:
                self._add(w, t, rows)
        self.text = "; ".join(o.text() for o in objectives)

    # -- filling the weights
    def _shape(self, layer: str) -> tuple:
        if layer not in self.shapes:
            import difflib
            near = difflib.get_close_matches(layer, list(self.shapes), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ObjectiveError(f"unknown layer {layer!r}{hint}; layers: {', '.join(self.shapes)}")
        return self.shapes[layer]

    def _channel(self, layer, shape, n) -> int:
        c = shape[layout(shape)[0]]
        if not 0 <= n < c:
            raise ObjectiveError(f"channel {n} is out of range: layer {layer} has {c} channels "
                                 f"(0..{c - 1})")
        return n

    def _arrays(self, layer):
        shape = self._shape(layer)
        if layer not in self.W:
            self.W[layer] = np.zeros(shape, np.float64)
            self.A[layer] = np.zeros(shape, np.float64)
        return shape, self.W[layer], self.A[layer]

    def _add(self, w: float, t: Term, rows: list[int]) -> None:
        if t.kind == "numpy":
            for layer in t.layers:
                self._arrays(layer)
            self.numpy.append((w, t, rows))
            return
        if t.layer is None:
            self._add_logits(w, t, rows)
            return
        shape, W, A = self._arrays(t.layer)
        cax, pax = layout(shape)
        positions = int(np.prod([shape[a] for a in pax])) if pax else 1
        index = [slice(None)] * len(shape)

        def at(c):
            ix = list(index)
            ix[cax] = c
            return tuple(ix)

        for r in rows:
            index[0] = r
            if t.kind == "channel":
                W[at(self._channel(t.layer, shape, t.args[0]))] += w / positions
            elif t.kind == "neuron":
                n, y, x = t.args
                ix = list(index)
                ix[cax] = self._channel(t.layer, shape, n)
                for axis, v in zip(pax, (y, x)):
                    size = shape[axis]
                    v = size // 2 if v is None else v
                    if not 0 <= v < size:
                        raise ObjectiveError(f"position {v} is out of range: layer {t.layer} has "
                                             f"{size} positions on that axis (0..{size - 1})")
                    ix[axis] = v
                if len(pax) < 2 and t.args[2] is not None:
                    raise ObjectiveError(f"layer {t.layer} has one position axis: give y only")
                W[tuple(ix)] += w
            elif t.kind == "direction":
                v = np.asarray(t.args[0])
                if v.shape != (shape[cax],):
                    raise ObjectiveError(f"direction has {v.size} values: layer {t.layer} has "
                                         f"{shape[cax]} channels")
                bshape = [1] * (len(shape) - 1)
                bshape[cax - 1] = shape[cax]
                W[r] += w * v.reshape(bshape) / positions
            elif t.kind == "energy":
                c = t.args[0]
                if c is None:
                    A[r] += w / int(np.prod(shape[1:]))
                else:
                    A[at(self._channel(t.layer, shape, c))] += w / positions
            elif t.kind == "distance":
                target = t.args[0].a
                if target.shape == shape[1:]:
                    row = target
                elif target.shape == shape:
                    row = target[r]
                elif target.shape == (1,) + shape[1:]:
                    row = target[0]
                else:
                    raise ObjectiveError(f"distance target has shape {list(target.shape)}: layer "
                                         f"{t.layer} has {list(shape)}")
                row = row.astype(np.float64)
                W[r] += -2.0 * w * row
                A[r] += 2.0 * w
                self.const += w * float((row ** 2).sum())
            else:
                raise AssertionError(t.kind)

    def _add_logits(self, w: float, t: Term, rows: list[int]) -> None:
        from .labels import LabelError, find_class
        try:
            c = find_class(self.engine.bundle.labels, t.args[0])
        except LabelError as exc:
            raise ObjectiveError(str(exc)) from None
        key = "class_weights" if t.kind == "score" else "log_softmax_weights"
        for k in ("class_weights", "log_softmax_weights"):
            self.logits.setdefault(k, np.zeros((self.batch, self.classes), np.float64))
        for r in rows:
            self.logits[key][r, c] += w

    # -- evaluating
    def graph_runs(self) -> int:
        """Gradient graph runs per call (one per layer read, one for the classes), plus one
        forward run when a numpy term is present."""
        return len(self.W) + bool(self.logits) + bool(self.numpy)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        engine = self.engine
        loss = self.const
        W = {k: v for k, v in self.W.items()}
        if self.numpy:
            loss += self._numpy_terms(x, W)
        grad = None
        for layer in W:
            weights = (self._f32(("W", layer), W[layer]) if W[layer] is self.W[layer]
                       else W[layer].astype(np.float32))
            step = engine.gradient(FEATURES.name, layer)(
                x, layer_weights=weights,
                layer_curvature=self._f32(("A", layer), self.A[layer]))
            loss += step.loss
            grad = step.grad if grad is None else grad + step.grad
        if self.logits:
            step = engine.gradient(LOGITS.name, "logits")(
                x, class_weights=self._f32("Wz", self.logits["class_weights"]),
                log_softmax_weights=self._f32("C", self.logits["log_softmax_weights"]))
            loss += step.loss
            grad = step.grad if grad is None else grad + step.grad
        if grad is None:
            raise ObjectiveError("the objective is empty")
        return float(loss), grad

    def _f32(self, key, a):
        cache = self.__dict__.setdefault("_cache", {})
        v = cache.get(key)
        if v is None:
            v = cache[key] = np.ascontiguousarray(a, dtype=np.float32)
        return v

    def _numpy_terms(self, x: np.ndarray, W: dict) -> float:
        """Run the forward graph, each numpy term, and fold its dL/dphi into W; the graphs
        then add <dL/dphi, phi>, which is taken back out of the loss here."""
        layers = sorted({l for _, t, _ in self.numpy for l in t.layers})
        out = self.engine.forward(x, [self.tensors[l] for l in layers])
        feats = {l: out[self.tensors[l]] for l in layers}
        loss = 0.0
        for w, t, rows in self.numpy:
            sub = {l: feats[l][rows] for l in t.layers}
            value = t.fn(sub)
            if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict)):
                raise ObjectiveError(f"numpy objective {t.args[0]} must return (loss, grads)")
            value_loss, grads = value
            for l in t.layers:
                g = np.asarray(grads.get(l) if l in grads else np.nan, dtype=np.float64)
                if g.shape != sub[l].shape:
                    raise ObjectiveError(f"numpy objective {t.args[0]} gave a gradient of shape "
                                         f"{list(g.shape)} for {l}, needs {list(sub[l].shape)}")
                W[l] = W[l].copy() if W[l] is self.W[l] else W[l]
                W[l][rows] += w * g
                loss -= w * float((g * sub[l].astype(np.float64)).sum())
            loss += w * float(value_loss)
        return loss
