"""Each layer's pre-activation: the layer of the table that a ReLU-like unit reads, found in the
bundle's forward graph, and an objective's warm-up on it.

A unit behind a ReLU or ReLU6 (``Clip``) that is off at every position of the start image gives
no gradient: the loop cannot move it and the picture stays the start (flat grey). When the
tensor the ``Clip``/``Relu`` reads is itself a layer of the bundle's layer table (on
EfficientNet-Lite0: ``_conv_stem`` for ``_swish``, ``_conv_head`` for ``_swish_1`` and, through
the global pool, for ``_avg_pooling``), the same channel, neuron or direction of that
pre-activation layer has a gradient wherever the unit's does not: climbing it turns the unit
on. :func:`surrogate` writes an objective's terms on their pre-activation layers;
:class:`WarmUp` is the objective the render loop climbs, the original wherever its gradient is
not zero and the surrogate for the batch slots where it is, recording which slots ever had a
gradient (a slot that never did is a dead unit: ``blank``).

The walk follows only operations that keep channels and are monotone per element: ``Clip``,
``Relu`` (any slope of ``LeakyRelu`` has a gradient), and the global pools (a neuron of a pooled
layer becomes the channel of the layer it pools).
"""

from __future__ import annotations

import os

import numpy as np
import onnx

from ortviz.objective.algebra import Objective, Term

ELEMENTWISE = ("Clip", "Relu")
POOLS = ("GlobalAveragePool", "GlobalMaxPool")
KINDS = ("channel", "neuron", "direction")    # terms with a surrogate (energies are not monotone)
# A slot's gradient counts as none when its largest element is at most this (model-space image
# units): a ReLU's mask gives exact zeros; a filter pruned to ~0 weights gives ~1e-13, which no
# optimizer step turns into a visible change.
NO_GRADIENT = 1e-9


_PRODUCERS: dict = {}


def _producers(forward_path: str) -> dict:
    """tensor -> (op_type, first input) of the forward graph (its structure only). Kept per file
    (device, inode, mtime, size), never per path: a bundle is read through
    ``/proc/self/fd/N``, and N names another bundle once the first is closed."""
    st = os.stat(forward_path)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _PRODUCERS:
        graph = onnx.load(forward_path, load_external_data=False).graph
        if len(_PRODUCERS) >= 8:
            _PRODUCERS.pop(next(iter(_PRODUCERS)))
        _PRODUCERS[key] = {out: (n.op_type, n.input[0] if n.input else None)
                           for n in graph.node for out in n.output}
    return _PRODUCERS[key]


def source(bundle, layer: str) -> tuple[str, bool] | None:
    """``(pre-activation layer, pooled)`` for ``layer``, or None where it has none in the table:
    the walk back from the layer's tensor through ReLU-like ops and global pools to another
    layer of the table that passed at least one ReLU-like op; ``pooled``: a pool was crossed."""
    by_tensor = {l["tensor"]: l["name"] for l in bundle.layers if "tensor" in l}
    tensor = next((l["tensor"] for l in bundle.layers if l["name"] == layer), None)
    if tensor is None:
        return None
    producers = _producers(str(bundle.forward_path))
    relu = pooled = False
    for _ in range(8):
        op, inp = producers.get(tensor, (None, None))
        if op in ELEMENTWISE:
            relu = True
        elif op in POOLS:
            pooled = True
        else:
            return None
        tensor = inp
        if relu and tensor in by_tensor:
            return by_tensor[tensor], pooled
    return None


def _term_on(t: Term, pre: str, pooled: bool) -> Term:
    if t.kind == "neuron" and pooled:       # a pooled neuron is its channel's mean
        return Term("channel", pre, (t.args[0],))
    return Term(t.kind, pre, t.args)


def surrogate(bundle, objective: Objective) -> Objective | None:
    """The objective with each channel, neuron and direction term of a layer that has a
    pre-activation layer moved onto it (weights kept, other terms dropped); None if no term
    has one."""
    parts = []
    for w, t in objective.parts:
        src = source(bundle, t.layer) if t.kind in KINDS and t.layer else None
        if src is not None:
            parts.append((w, _term_on(t, *src)))
    return Objective(parts) if parts else None


class WarmUp:
    """``f(x) -> (value, grad)``: ``original``'s value, its gradient where that is not zero and
    ``warm``'s (the surrogate's) in the batch slots where it is; ``warm`` None: the original
    alone. ``alive[i]``: slot i's objective gradient was above :data:`NO_GRADIENT` in some
    call;
    ``warm_steps[i]``: the calls in which slot i climbed the surrogate; ``warm_alive[i]``: its
    gradient was above :data:`NO_GRADIENT` in one of them.

    ``probe``: the objective alone, where ``original`` adds terms whose gradient hides a dead
    unit (a diversity set): until every slot has been alive, steps take the probe's gradient
    (the surrogate's where it is zero) instead of the original's."""

    def __init__(self, original, warm, slots: int, probe=None):
        self.original, self.warm, self.probe = original, warm, probe
        self.alive = np.zeros(slots, bool)
        self.warm_alive = np.zeros(slots, bool)   # the surrogate's gradient was not zero
        self.warm_steps = [0] * slots

    def __call__(self, x: np.ndarray):
        early = self.probe is not None and not self.alive.all()
        value, grad = (self.probe if early else self.original)(x)
        live = np.array([np.abs(grad[i]).max() > NO_GRADIENT for i in range(len(self.alive))])
        self.alive |= live
        if self.warm is None or live.all():
            return value, grad
        _, g_warm = self.warm(x)
        grad = np.array(grad, copy=True)
        for i in np.flatnonzero(~live):
            grad[i] = g_warm[i]
            self.warm_steps[i] += 1
            self.warm_alive[i] |= bool(np.abs(g_warm[i]).max() > NO_GRADIENT)
        return value, grad
