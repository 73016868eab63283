"""An objective value bound to one bundle: the graphs' weights, and ``f(x) -> (loss, grad)``.

:class:`Bound` turns the terms of :mod:`ortviz.objective.algebra` objectives into the run-time inputs of
the bundle's built-in graphs (W and A per layer read, Wz and C for the classes, one row per batch
slot), checking each term against the bundle (one-line :class:`ObjectiveError`), and evaluates
them: one ``features`` graph run per layer, one ``logits`` run, and for numpy terms one forward
run first whose dL/dphi joins W.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ortviz.bundle.graphs import FEATURES, LOGITS
from ortviz.bundle.labels import LabelError, find_class
from ortviz.errors import did_you_mean
from ortviz.objective.algebra import Objective, ObjectiveError, Term, layout  # noqa: F401 (Term: annotations)


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

    @classmethod
    def on_bundle(cls, bundle, objectives: list, per_slot: bool = False) -> "Bound":
        """The objectives bound to ``bundle`` alone, no session made: each term checked against
        it (raises :class:`ObjectiveError`), and the arrays the engine would feed its graphs."""
        return cls(SimpleNamespace(bundle=bundle, image_shape=tuple(bundle.input["shape"])),
                   objectives, per_slot=per_slot)

    # -- filling the weights
    def _shape(self, layer: str) -> tuple:
        if layer not in self.shapes:
            near = did_you_mean(layer, self.shapes)
            hint = f" ({near})" if near else ""
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

    def reads(self, layer: str) -> None:
        """Run ``layer``'s graph on every call, even with no term on it (``extra`` weights it)."""
        self._arrays(layer)

    def __call__(self, x: np.ndarray, extra: dict | None = None) -> tuple[float, np.ndarray]:
        """``extra``: layer -> dL/dphi added to that layer's W for this call (a layer given to
        :meth:`reads`); the loss then holds ``<extra, phi>`` too, which the caller takes out."""
        engine = self.engine
        loss = self.const
        W = {k: v for k, v in self.W.items()}
        for layer, e in (extra or {}).items():
            W[layer] = W[layer] + e
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
