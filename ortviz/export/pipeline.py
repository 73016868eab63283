"""Export a classifier's ONNX graph to a bundle: the objectives come from installed plugins."""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxruntime
from onnx import TensorProto, helper

from ortviz import __version__
from ortviz.bundle.graphs import FEATURES, LOGITS, graph_objective
from ortviz.export.canonical import canonicalize, fixed_size
from ortviz.export.gradients import GradientGraph, build
from ortviz.export.graph import ExportError, static_shapes
from ortviz.export.layers import Layer, select_layers
from ortviz.export.writer import check_replaceable, write_bundle
from ortviz.techniques.spec import Need, Technique

PREPROCESSING = {
    # x = (pixel - mean) / std, pixel in 0..255, per RGB channel
    "imagenet": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
    "lite": {"mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]},
    "unit": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]},
    "signed": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
}


@dataclass
class ExportOptions:
    name: str
    source: str
    size: int | None = None  # None: the model's fixed input size, else 224
    batch: int = 1
    layers: str = "default"
    mean: list[float] = field(default_factory=lambda: PREPROCESSING["imagenet"]["mean"])
    std: list[float] = field(default_factory=lambda: PREPROCESSING["imagenet"]["std"])
    labels: list[str] | None = None
    recipe: str = ""
    keep_raw: bool = False  # keep the training build's graphs (tests compare against them)


def collect_needs(techniques: dict[str, Technique]) -> list[Need]:
    """The built-in objectives (every bundle has them: they serve every objective of
    :mod:`ortviz.objective.algebra` and the format-1 names), then any other graph objective the given
    techniques declare, each once (by objective name and target)."""
    needs = [Need(LOGITS, on="logits"), Need(FEATURES, on="layers")]
    seen = {(n.objective.name, n.on) for n in needs}
    for tech in techniques.values():
        for need in tech.needs:
            objective = graph_objective(need.objective)
            key = (objective.name, need.on)
            if key not in seen:
                seen.add(key)
                needs.append(Need(objective, on=need.on))
    return needs


def _preprocessing(opts: ExportOptions, channels: int) -> dict:
    if len(opts.mean) != channels or len(opts.std) != channels:
        raise ExportError(f"preprocessing needs {channels} mean and std values, got "
                          f"{len(opts.mean)} and {len(opts.std)}")
    if any(s <= 0 for s in opts.std):
        raise ExportError("preprocessing std values must be positive")
    lo = [(0.0 - m) / s for m, s in zip(opts.mean, opts.std)]
    hi = [(255.0 - m) / s for m, s in zip(opts.mean, opts.std)]
    return {"pixel_range": [0, 255], "mean": list(opts.mean), "std": list(opts.std),
            "formula": "(pixel - mean) / std", "valid_range": {"low": lo, "high": hi}}


def _forward_with_layers(model: onnx.ModelProto, layers: list[Layer]) -> onnx.ModelProto:
    fwd = onnx.ModelProto()
    fwd.CopyFrom(model)
    for layer in layers:
        fwd.graph.output.append(
            helper.make_tensor_value_info(layer.tensor, TensorProto.FLOAT, list(layer.shape)))
    return fwd


def export_model(model: onnx.ModelProto, out: Path, opts: ExportOptions,
                 techniques: dict[str, Technique], force: bool = False,
                 progress=lambda msg: None) -> tuple[Path, list[GradientGraph]]:
    if opts.size is None:
        opts = dataclasses.replace(opts, size=fixed_size(model) or 224)
    if opts.size < 8 or opts.batch < 1:
        raise ExportError("input size must be at least 8 and batch at least 1")
    check_replaceable(Path(out), force)  # before the slow part; again under the lock at the end
    needs = collect_needs(techniques)
    canonical, image, logits = canonicalize(model, opts.size, opts.batch)
    shapes = static_shapes(canonical)
    n_classes = shapes[logits][1]
    labels = opts.labels or [f"class {i}" for i in range(n_classes)]
    if len(labels) != n_classes:
        raise ExportError(f"labels file has {len(labels)} names but the model has {n_classes} classes")
    layers = select_layers(canonical, image, opts.layers)
    progress(f"canonical graph: {len(canonical.graph.node)} nodes, {len(layers)} layers")
    graphs: list[GradientGraph] = []
    for need in needs:
        targets = ([("logits", logits, shapes[logits])] if need.on == "logits"
                   else [(l.name, l.tensor, l.shape) for l in layers])
        for layer_name, tensor, shape in targets:
            progress(f"building {need.objective.name} at {layer_name}")
            graphs.append(build(canonical, image, need.objective, layer_name, tensor, shape,
                                keep_raw=opts.keep_raw))
    channels = shapes[image][1]
    manifest = {
        "model": {"name": opts.name, "source": opts.source, "recipe": opts.recipe,
                  "exported_by": {"ortviz": __version__, "onnx": onnx.__version__,
                                  "onnxruntime_training": onnxruntime.__version__,
                                  "python": platform.python_version()}},
        "input": {"name": image, "shape": list(shapes[image]), "layout": "NCHW",
                  "color_order": "RGB" if channels == 3 else "L", "dtype": "float32"},
        "preprocessing": _preprocessing(opts, channels),
        "logits": {"name": logits, "shape": list(shapes[logits])},
        "labels": labels,
        "layers": [l.to_json() for l in layers],
        "forward": {"outputs": [logits] + [l.tensor for l in layers]},
        "techniques": sorted(techniques),
    }
    path = write_bundle(out, _forward_with_layers(canonical, layers), graphs, manifest, force=force)
    return path, graphs
