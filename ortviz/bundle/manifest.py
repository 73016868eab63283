"""The bundle manifest's structure: every field the runtime reads, of the right type and
consistent. Bundles come from anywhere, so :func:`check_manifest` runs before anything in one is
used; every failure is a :class:`~ortviz.errors.BundleError` with a one-line message.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields

from ortviz.errors import BundleError

# C0/C1 controls, DEL and the bidi overrides: nothing a label should print to a terminal
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class GraphEntry:
    file: str
    objective: str
    layer: str
    tensor: str
    inputs: dict
    outputs: dict


def _kind_ok(value, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str) and value != "" and "\x00" not in value
    if kind == "text":
        return isinstance(value, str)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "shape":
        return (isinstance(value, list) and len(value) >= 1 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31 for v in value))
    if kind == "numbers":
        return isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value)
    raise AssertionError(kind)


_KIND_TEXT = {"str": "a non-empty string", "text": "a string", "dict": "an object",
              "list": "a list", "strs": "a list of strings",
              "shape": "a list of positive integers", "numbers": "a list of finite numbers"}


def _field(d, key: str, kind: str, where: str):
    name = f"{where}.{key}" if where else key
    if not isinstance(d, dict) or key not in d:
        raise BundleError(f"bundle manifest has no {name!r} field")
    value = d[key]
    if not _kind_ok(value, kind):
        raise BundleError(f"bundle manifest field {name!r} must be {_KIND_TEXT[kind]}, "
                          f"got {type(value).__name__} {json.dumps(value)[:40]}")
    return value


def _bad(msg: str):
    raise BundleError(f"bundle manifest: {msg}")


def check_manifest(m: dict) -> None:
    """The manifest's structure: every field the runtime reads, of the right type and consistent."""
    model = _field(m, "model", "dict", "")
    _field(model, "name", "str", "model")
    _field(model, "source", "text", "model")
    inp = _field(m, "input", "dict", "")
    _field(inp, "name", "str", "input")
    shape = _field(inp, "shape", "shape", "input")
    if len(shape) != 4:
        _bad(f"input.shape {shape} is not 4-D (N, C, H, W)")
    for key in ("layout", "color_order", "dtype"):
        _field(inp, key, "str", "input")
    if inp["layout"] != "NCHW" or inp["dtype"] != "float32":
        _bad(f"input must be NCHW float32, got {inp['layout']} {inp['dtype']}")
    pre = _field(m, "preprocessing", "dict", "")
    _field(pre, "formula", "text", "preprocessing")
    for key in ("mean", "std"):
        if len(_field(pre, key, "numbers", "preprocessing")) != shape[1]:
            _bad(f"preprocessing.{key} needs {shape[1]} values (one per channel)")
    if any(not s > 1e-6 * max(1.0, abs(m)) for s, m in zip(pre["std"], pre["mean"])):
        _bad(f"preprocessing.std values must be positive and not vanishing, got {pre['std']}")
    logits = _field(m, "logits", "dict", "")
    _field(logits, "name", "str", "logits")
    lshape = _field(logits, "shape", "shape", "logits")
    if len(lshape) != 2 or lshape[0] != shape[0]:
        _bad(f"logits.shape {lshape} is not [batch, classes] with the input's batch")
    labels = _field(m, "labels", "strs", "")
    if len(labels) != lshape[1]:
        _bad(f"{len(labels)} labels for {lshape[1]} classes")
    for k, label in enumerate(labels):
        if CONTROL.search(label):
            _bad(f"label {k} holds a control character ({json.dumps(label)[:60]})")
    bid = _field(m, "bundle_id", "str", "")
    if not re.fullmatch(r"[0-9a-f]{32}", bid):
        _bad("bundle_id is not 32 hex digits")
    layers = _field(m, "layers", "list", "")
    names = set()
    for k, layer in enumerate(layers):
        where = f"layers[{k}]"
        for key in ("name", "tensor", "op"):
            _field(layer, key, "str", where)
        _field(layer, "shape", "shape", where)
        if layer["name"] in names or layer["name"] == "logits":
            _bad(f"layer name {layer['name']!r} appears twice or is reserved")
        names.add(layer["name"])
    fwd = _field(m, "forward", "dict", "")
    _field(fwd, "file", "str", "forward")
    outs = _field(fwd, "outputs", "strs", "forward")
    missing = [t for t in [logits["name"]] + [l["tensor"] for l in layers] if t not in outs]
    if missing:
        _bad(f"forward.outputs lacks {missing[0]!r}")
    graphs = _field(m, "graphs", "list", "")
    keys = {f.name for f in fields(GraphEntry)}
    seen = set()
    for k, g in enumerate(graphs):
        where = f"graphs[{k}]"
        if not isinstance(g, dict) or set(g) != keys:
            _bad(f"{where} must be an object with exactly the fields {', '.join(sorted(keys))}")
        for key in ("file", "objective", "layer", "tensor"):
            _field(g, key, "str", where)
        ins = _field(g, "inputs", "dict", where)
        for name in ins:
            _field(ins, name, "shape", f"{where}.inputs")
        if ins.get(inp["name"]) != shape:
            _bad(f"{where}.inputs does not give the image {inp['name']!r} the input shape")
        outputs = _field(g, "outputs", "dict", where)
        _field(outputs, "loss", "str", f"{where}.outputs")
        _field(outputs, "grad", "str", f"{where}.outputs")
        if g["layer"] != "logits" and g["layer"] not in names:
            _bad(f"{where} is for layer {g['layer']!r}, which the layer table does not have")
        if (g["objective"], g["layer"]) in seen:
            _bad(f"{where} repeats objective {g['objective']} at {g['layer']}")
        seen.add((g["objective"], g["layer"]))
    if "techniques" in m:
        _field(m, "techniques", "strs", "")
    files = _field(m, "files", "dict", "")
    if not files:
        _bad("lists no files")
    for rel, digest in files.items():
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            _bad(f"files[{rel!r}] is not a sha256 hex digest")
    for rel in [fwd["file"]] + [g["file"] for g in graphs]:
        if rel not in files:
            _bad(f"graph file {rel!r} is not listed under files")
    if len({fwd["file"]} | {g["file"] for g in graphs}) != 1 + len(graphs):
        _bad("two entries share one graph file")


# -- graph files ---------------------------------------------------------------------------------
