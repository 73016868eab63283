"""One gradient graph: forward graph + objective, built by onnxruntime-training, then lowered.

Needs the export environment (onnxruntime-training 1.19.2 as the ``onnxruntime`` package).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from ortviz.bundle.graphs import LOSS, Objective
from ortviz.errors import first_line
from ortviz.export.graph import ExportError
from ortviz.export.lowering import lower


@dataclass
class GradientGraph:
    objective: str
    layer: str           # "logits" or a layer name
    tensor: str
    inputs: dict         # name -> shape, besides the image
    grad: str            # name of the input-gradient output
    lowered: onnx.ModelProto
    raw: onnx.ModelProto | None = None   # the training build's graph, kept for tests


def _builder():
    try:
        import onnxruntime  # the training build: the export environment only
        from onnxruntime.capi._pybind_state import GradientGraphBuilder  # (ditto)
        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        raise ExportError("exporting needs the export environment (onnxruntime-training 1.19.2); "
                          "see the docs' Getting started page, 'Environments'") from None
    return GradientGraphBuilder


def builder_message(exc: Exception) -> str:
    """The training build's C++ error as one readable line: the op it has no gradient for, or
    the check that failed, without the source path and signature."""
    text = first_line(exc)
    missing = re.search(r"has not been registered: (\S+) for node\s*(\S*)", text)
    if missing:
        op, node = missing.groups()
        where = f" (node {node!r})" if node else ""
        return (f"no input gradient for op {op}{where}: onnxruntime-training has none and ortviz "
                "has no rewrite for it (the docs' Supported models page)")
    if "/onnxruntime_src/" not in text:
        return text
    after = text.split("was false.", 1)
    if len(after) == 2 and after[1].strip():
        return after[1].strip()
    impl = re.search(r"GetGradientDefsImpl\(\) const (.+)", text)
    if impl:
        return impl.group(1).strip()
    check = re.search(r"\) (?:const )?(.+?) was false", text)
    return f"internal check failed: {check.group(1)}" if check else text


def with_objective(forward: onnx.ModelProto, objective: Objective, tensor: str,
                   shape: tuple) -> tuple[onnx.ModelProto, dict]:
    """The forward graph with the objective's nodes appended and ``loss`` as an extra output.

    Outputs are appended, never replaced: the 1.19.2 builder crashed when original outputs
    were replaced by intermediate ones while a MaxPool's indices output was unused.
    """
    model = onnx.ModelProto()
    model.CopyFrom(forward)
    patch = objective.append_to(tensor, shape)
    taken = {v.name for v in model.graph.input} | {n for node in model.graph.node for n in node.output}
    clash = [i.name for i in patch.inputs if i.name in taken]
    if clash:
        raise ExportError(f"objective {objective.name}: input name {clash[0]!r} clashes with the model")
    model.graph.node.extend(patch.nodes)
    model.graph.input.extend(patch.inputs)
    model.graph.initializer.extend(patch.initializers)
    model.graph.output.append(helper.make_tensor_value_info(LOSS, TensorProto.FLOAT, [1]))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in patch.inputs}
    return model, inputs


@contextlib.contextmanager
def _native_info_filtered():
    """The training build's gradient builder logs one INFO line per graph transformer to the
    process's stderr from C++, whatever the default logger's severity: hold file descriptor 2
    in a temporary file for the block, then pass on every line that is not INFO or VERBOSE."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not re.search(r"\[[IV]:onnxruntime:", line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def build(forward: onnx.ModelProto, input_name: str, objective: Objective, layer: str,
          tensor: str, shape: tuple, keep_raw: bool = False) -> GradientGraph:
    model, inputs = with_objective(forward, objective, tensor, shape)
    try:
        with _native_info_filtered():
            builder = _builder()(model.SerializeToString(), {LOSS}, {input_name}, LOSS)
            builder.build()
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"gradient builder failed for {objective.name} at {layer}: "
                          f"{builder_message(exc)}") from None
    raw = onnx.load_from_string(builder.get_model())
    grad = f"{input_name}_grad"
    if grad not in {o.name for o in raw.graph.output}:
        raise ExportError(f"{objective.name} at {layer} does not depend on the input image")
    kept = onnx.ModelProto()
    if keep_raw:
        kept.CopyFrom(raw)
    lowered = lower(raw, [LOSS, grad])
    return GradientGraph(objective.name, layer, tensor, inputs, grad, lowered,
                         kept if keep_raw else None)
