"""An objective string as what the page feeds to the bundle's gradient graphs.

The string is parsed by the CLI's parser (:func:`ortviz.objective.coerce.as_objectives`) and bound
by :class:`ortviz.objective.bind.Bound`, so the arrays are the ones the engine feeds: per layer read,
one ``features`` graph run with ``layer_weights`` (W) and ``layer_curvature`` (A); for classes,
one ``logits`` run with ``class_weights`` and ``log_softmax_weights``; plus a constant added to
the loss. The arrays are mostly zeros, so each is sent as runs of equal values over the flat
array: ``[start, length, value]`` (a channel is one run, a layer's energy one run, a class one).
"""

from __future__ import annotations

import numpy as np

from ortviz.bundle.graphs import FEATURES, LOGITS
from ortviz.objective.algebra import ObjectiveError
from ortviz.objective.bind import Bound
from ortviz.objective.coerce import as_objectives

MAX_RUNS = 1 << 16     # runs per array: more is a term the page cannot take (a distance target)


def runs(a: np.ndarray) -> list[list]:
    """``a`` (rounded to float32, as the engine feeds it) as ``[start, length, value]`` runs of
    equal non-zero values over the flat array."""
    flat = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    nz = np.flatnonzero(flat)
    if nz.size == 0:
        return []
    vals = flat[nz]
    # a run breaks where the index jumps or the value changes
    brk = np.flatnonzero((np.diff(nz) != 1) | (vals[1:] != vals[:-1])) + 1
    starts = np.concatenate([[0], brk])
    ends = np.concatenate([brk, [nz.size]])
    if starts.size > MAX_RUNS:
        raise ObjectiveError("this objective's weights are too irregular for the page "
                             f"({starts.size} runs; at most {MAX_RUNS})")
    return [[int(nz[s]), int(e - s), float(vals[s])] for s, e in zip(starts, ends)]


def _array(a: np.ndarray) -> dict:
    return {"shape": [int(v) for v in a.shape], "runs": runs(a)}


def objective_feeds(bundle, text: str) -> dict:
    """``{"text", "const", "runs": [{"file", "objective", "layer", "inputs": {name: array}}]}``
    for the objective ``text``; raises :class:`ObjectiveError` (one line)."""
    if not isinstance(text, str) or not text.strip():
        raise ObjectiveError("objective is empty; e.g. _blocks.10:5 or class:flamingo")
    if ";" in text:  # the CLI's slot separator (ortviz.objective.text.parse_slots)
        raise ObjectiveError("the page runs one objective at a time (';' is for batch bundles "
                             "on the command line)")
    objs = as_objectives(text, bundle)
    bound = Bound.on_bundle(bundle, objs)
    if bound.numpy:
        raise ObjectiveError("numpy objectives (plugins) run on the command line, not in the page")
    out = []
    for layer in bound.W:
        g = bundle.graph(FEATURES.name, layer)
        out.append({"file": g.file, "objective": g.objective, "layer": layer,
                    "inputs": {"layer_weights": _array(bound.W[layer]),
                               "layer_curvature": _array(bound.A[layer])}})
    if bound.logits:
        g = bundle.graph(LOGITS.name, "logits")
        out.append({"file": g.file, "objective": g.objective, "layer": "logits",
                    "inputs": {"class_weights": _array(bound.logits["class_weights"]),
                               "log_softmax_weights": _array(bound.logits["log_softmax_weights"])}})
    if not out:
        raise ObjectiveError("the objective is empty")
    return {"text": bound.text, "const": float(bound.const), "runs": out}
