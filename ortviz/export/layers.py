"""The layer table: which intermediate tensors a bundle offers to layer objectives.

Candidates are feature maps (4-D tensors) and token sequences (3-D, in transformers) that are
*cut points* of the graph: every path from
the image to the logits passes through them, as a block's output does (inside a residual block
the skip path bypasses the tensors, so they are not). The default keeps the last cut point of
each top-level module of the source network (``_blocks.3``, ``layer2``), so a layer is a block
or a stage, not a node. ``all`` offers every 3-D or 4-D tensor on the path to the logits.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import onnx

from ortviz.errors import did_you_mean
from ortviz.export.graph import ExportError, static_shapes


@dataclass(frozen=True)
class Layer:
    name: str
    tensor: str
    shape: tuple[int, ...]
    op: str

    def to_json(self) -> dict:
        return {"name": self.name, "tensor": self.tensor, "shape": list(self.shape), "op": self.op}


SCOPE_KEY = "ortviz.module"
FUSION_KEY = "pkg.onnxscript.rewriter.rule_name"
# Feature maps (N, C, H, W) and token sequences (N, T, D) of vision transformers.
FEATURE_RANKS = (3, 4)


def module_scope(node: onnx.NodeProto) -> str | None:
    """The top-level module of the source network that produced this node, if known:
    from the dynamo exporter's name scopes or the TorchScript exporter's node names."""
    meta = {p.key: p.value for p in node.metadata_props}
    if SCOPE_KEY in meta:
        return meta[SCOPE_KEY]
    if "FuseBatchNormIntoConv" in meta.get(FUSION_KEY, "") and len(node.input) > 1 and "." in node.input[1]:
        # the dynamo exporter's optimizer folded a BatchNorm into this Conv and gave the Conv the
        # BatchNorm's scope; its weight keeps the Conv's parameter name ("conv1.weight"). The
        # layer is named after the convolution, as the TorchScript exporter's and ortviz's own
        # fold (export.folding) name it: one name for one layer, whichever exporter made it
        return node.input[1].split(".")[0]
    if "pkg.torch.onnx.name_scopes" in meta:
        try:
            scopes = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
        except (ValueError, SyntaxError):
            return None
        return scopes[1] if len(scopes) > 2 else None
    if node.name.startswith("/") and node.name.count("/") >= 2:
        return node.name.split("/")[1]
    return None


def _cut_points(model: onnx.ModelProto, input_name: str) -> list[str]:
    g = model.graph
    remaining: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            if i:
                remaining[i] = remaining.get(i, 0) + 1
    derived = {input_name}
    live = {input_name}
    cuts = []
    for node in g.node:  # ONNX graphs are stored in topological order
        if not any(i in derived for i in node.input):
            continue
        for i in node.input:
            if i in live:
                remaining[i] -= 1
                if remaining[i] == 0:
                    live.discard(i)
        outs = [o for o in node.output if o and remaining.get(o, 0) > 0]
        derived.update(o for o in node.output if o)
        live.update(outs)
        if len(live) == 1 and len(outs) == 1:
            cuts.append(outs[0])
    return cuts


def candidate_layers(model: onnx.ModelProto, input_name: str, which: str = "default") -> list[Layer]:
    shapes = static_shapes(model)
    producer = {o: n for n in model.graph.node for o in n.output if o}
    if which == "all":
        tensors = [o for n in model.graph.node for o in n.output
                   if o and len(shapes.get(o, ())) in FEATURE_RANKS and o != input_name]
        # only those that lead to the output
        return _named([(t, None) for t in tensors if _leads_to_output(model, t)], shapes, producer)
    cuts = [t for t in _cut_points(model, input_name) if len(shapes.get(t, ())) in FEATURE_RANKS]
    scoped = [(t, module_scope(producer[t])) for t in cuts]
    if any(s is not None for _, s in scoped):
        groups: list[tuple[str, str | None]] = []
        for t, s in scoped:
            if groups and s is not None and groups[-1][1] == s:
                groups[-1] = (t, s)
            else:
                groups.append((t, s))
        return _named(groups, shapes, producer)
    # No module names: keep the last cut point of each run of equal shapes.
    runs: list[str] = []
    for t in cuts:
        if runs and shapes[runs[-1]] == shapes[t]:
            runs[-1] = t
        else:
            runs.append(t)
    return _named([(t, None) for t in runs], shapes, producer)


def _leads_to_output(model: onnx.ModelProto, tensor: str) -> bool:
    needed = {o.name for o in model.graph.output}
    for node in reversed(list(model.graph.node)):
        if any(o in needed for o in node.output):
            needed.update(node.input)
    return tensor in needed


def _named(items, shapes, producer) -> list[Layer]:
    layers, seen = [], set()
    for tensor, scope in items:
        name = scope or tensor
        base, k = name, 2
        while name in seen:
            name, k = f"{base}#{k}", k + 1
        seen.add(name)
        layers.append(Layer(name, tensor, shapes[tensor], producer[tensor].op_type))
    return layers


def select_layers(model: onnx.ModelProto, input_name: str, spec: str) -> list[Layer]:
    """``default``, ``all``, or a comma-separated list of layer or tensor names."""
    if spec in ("default", "all"):
        return candidate_layers(model, input_name, spec)
    table = candidate_layers(model, input_name, "all") + candidate_layers(model, input_name)
    by_name = {l.name: l for l in table} | {l.tensor: l for l in table}
    chosen = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name not in by_name:
            hint = did_you_mean(name, by_name)
            raise ExportError(f"unknown layer {name!r}" + (f"; {hint}" if hint else ""))
        chosen.append(by_name[name])
    return chosen
