"""Small, mutable view of an ONNX graph used by the export passes.

Passes here (shape folding, constant folding, pruning) work on static shapes: a bundle's graphs
have a fixed input size, so every Shape, Size and shape arithmetic folds to constants.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Constants above this many elements are weights, never created by folding (all weights live
# once, in the bundle's shared weights file).
SMALL = 4096


class ExportError(Exception):
    """A model the exporter cannot handle; the message is one line for the user."""


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    return shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)


def static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Name -> static shape for every value whose shape inference found all dims."""
    out: dict[str, tuple[int, ...]] = {}
    g = model.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if all(d is not None for d in dims):
            out[vi.name] = tuple(int(d) for d in dims)
    for init in g.initializer:
        out[init.name] = tuple(init.dims)
    return out


def constants(model: onnx.ModelProto, max_elems: int | None = None) -> dict[str, np.ndarray]:
    """Initializers (optionally only small ones) and Constant node values by name."""
    vals: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        if max_elems is None or int(np.prod(init.dims)) <= max_elems:
            vals[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value":
                    vals[node.output[0]] = numpy_helper.to_array(a.t)
    return vals


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for i in node.input:
            if i:
                out.setdefault(i, []).append(node)
    return out


def prune(model: onnx.ModelProto, outputs: list[str] | None = None) -> None:
    """Keep only the nodes, initializers and inputs the graph outputs need."""
    g = model.graph
    if outputs is not None:
        keep_out = [o for name in outputs for o in g.output if o.name == name]
        missing = set(outputs) - {o.name for o in keep_out}
        if missing:
            raise ExportError(f"graph has no output named {sorted(missing)[0]}")
        del g.output[:]
        g.output.extend(keep_out)
    needed = {o.name for o in g.output}
    kept = []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output if o):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del g.node[:]
    g.node.extend(kept)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    names_init = {i.name for i in inits}
    ins = [i for i in g.input if i.name in needed and i.name not in names_init]
    del g.input[:]
    g.input.extend(ins)
    vis = [v for v in g.value_info if v.name in needed]
    del g.value_info[:]
    g.value_info.extend(vis)


def default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    raise ExportError("model imports no default ONNX opset")


def default_opset_only(model: onnx.ModelProto) -> None:
    """Drop the imports of other domains (once no node of theirs is left)."""
    keep = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def is_standard(node: onnx.NodeProto) -> bool:
    """A default-domain op that the ONNX standard defines (the training build registers some
    of its gradient ops, MaxPoolGrad for one, in the default domain)."""
    return node.domain in ("", "ai.onnx") and onnx.defs.has(node.op_type)


def custom_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if not is_standard(n)]


class Context:
    """What a rewrite rule sees: static shapes, small constants, producers and consumers, and
    fresh names and constants for the nodes it makes."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.shapes = static_shapes(model)
        self.consts = constants(model, max_elems=1 << 16)
        self._n = 0
        self.producer = {o: n for n in model.graph.node for o in n.output if o}
        self.consumers = consumers(model)
        self.weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
        self._taken = (set(self.producer) | {i.name for i in model.graph.initializer}
                       | {i.name for i in model.graph.input})

    def fresh(self, hint: str) -> str:
        """A new value name, never one the graph already uses (passes run more than once)."""
        while True:
            self._n += 1
            name = f"lowered/{hint}_{self._n}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def const(self, value, dtype=None) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh("c")
        self.model.graph.initializer.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs):
        outputs = outputs or [self.fresh(op)]
        return helper.make_node(op, inputs, outputs, name=outputs[0], **attrs)


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def explicit_pads(auto_pad, in_sp, k, s, d, pads) -> list[int]:
    """Begin-then-end pads of a conv or pool, resolving auto_pad (SAME_UPPER/LOWER, VALID)."""
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    n = len(in_sp)
    if auto_pad in ("", "NOTSET"):
        return list(pads) if pads else [0] * (2 * n)
    if auto_pad == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for i in range(n):
        out = -(-in_sp[i] // s[i])
        total = max((out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - in_sp[i], 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else big)
        end.append(big if auto_pad == "SAME_UPPER" else small)
    return begin + end


def splice(model: onnx.ModelProto, rules_for: Callable, keep_metadata: bool = False) -> bool:
    """One pass over the graph's nodes: each node is replaced by the nodes the first of its
    rules returns (``rules_for(node)`` lists them; a rule returns None to pass), others stay.
    ``keep_metadata`` copies the node's metadata (its module scope) onto its replacements.
    True when any node was replaced."""
    ctx = Context(model)
    changed, nodes = False, []
    for node in list(model.graph.node):
        new = None
        for rule in rules_for(node):
            new = rule(node, ctx)
            if new is not None:
                break
        if new is None:
            nodes.append(node)
            continue
        if keep_metadata:
            for n in new:
                n.metadata_props.extend(node.metadata_props)
        nodes.extend(new)
        changed = True
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return changed
