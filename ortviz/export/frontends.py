"""Front ends: turn what the user has into an ONNX classifier graph.

* ``torch``: ``MODULE:FACTORY`` names a callable returning an ``nn.Module``; optional weights
  are loaded with ``torch.load(..., weights_only=True)`` (never unpickled code). Both of torch's
  exporters work: ``torchscript`` (``dynamo=False``) and ``dynamo``.
* ``onnx``: any classifier already in ONNX (a model-zoo file, a tf2onnx output).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import onnx

from ortviz.errors import first_line
from ortviz.export.graph import ExportError

EXPORTERS = ("torchscript", "dynamo")


def load_onnx(path: Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no such model file: {path}")
    if path.stat().st_size == 0:
        raise ExportError(f"model file {path} is empty")
    try:
        model = onnx.load_model(str(path), load_external_data=True)
    except Exception as exc:
        raise ExportError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    if not model.graph.node:
        raise ExportError(f"{path} is not a readable ONNX model (no graph)")
    return model


def _factory(spec: str):
    if ":" not in spec:
        raise ExportError(f"expected MODULE:FACTORY (for example mypkg.nets:resnet18), got {spec!r}")
    mod_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ExportError(f"cannot import {mod_name!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ExportError(f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ExportError(f"{spec} is not callable")
    return obj


def _torch():
    try:
        import torch  # the export environment only
    except ImportError:
        raise ExportError("exporting a PyTorch model needs torch and the export environment "
                          "(onnxruntime-training 1.19.2); see the docs' Getting started page, 'Environments'") from None
    return torch


def _weights_message(weights: Path, exc: Exception) -> str:
    """One whole line for a weights file torch cannot load safely. A pickled model object (not
    a state dict) names its class: ortviz never unpickles code, so it says how to save weights."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (f"cannot load weights {weights}: it holds a pickled {found.group(1)} object, not "
                "a state dict, and ortviz never unpickles code; save the weights with "
                "torch.save(model.state_dict(), PATH) and pass MODULE:FACTORY for the architecture")
    if "Weights only load failed" in text:
        return (f"cannot load weights {weights}: it holds objects other than tensors, and ortviz "
                "loads weights only (torch.load(weights_only=True)); save model.state_dict()")
    return f"cannot load weights {weights}: {first_line(exc)}"


def torch_module(spec: str, weights: Path | None = None):
    torch = _torch()

    net = _factory(spec)()
    if not isinstance(net, torch.nn.Module):
        raise ExportError(f"{spec}() returned a {type(net).__name__}, not a torch.nn.Module")
    if weights is not None:
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ExportError(_weights_message(weights, exc)) from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            net.load_state_dict(state)
        except Exception as exc:
            raise ExportError(f"weights {weights} do not fit {spec}: {first_line(exc)}") from None
    return net.eval()


@contextlib.contextmanager
def _torch_quiet():
    """torch's exporters talk about themselves (the dynamo exporter logs that torchvision is
    missing, both warn about their own deprecations and shape inference): not ortviz's output.
    Errors still raise, and ortviz says them in one line."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo",
                                                    "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def from_torch(net, size: int, batch: int = 1, channels: int = 3,
               exporter: str = "torchscript") -> onnx.ModelProto:
    import torch  # the export environment only

    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose {' or '.join(EXPORTERS)}")
    net = net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.zeros(batch, channels, size, size)
    with tempfile.TemporaryDirectory(prefix="ortviz-torch-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        kwargs = dict(input_names=["image"], output_names=["logits"])
        try:
            with _torch_quiet():
                if exporter == "dynamo":
                    torch.onnx.export(net, (x,), path, dynamo=True, external_data=True,
                                      verbose=False, **kwargs)
                else:
                    # PRESERVE and no constant folding: torch would fold BatchNorm into the Conv
                    # weights with the CPU's own kernels (different last bits on AVX-512 Intel
                    # and AMD); ortviz folds it in float64 instead (export.folding), the same
                    # everywhere
                    torch.onnx.export(net, (x,), path, dynamo=False, opset_version=17,
                                      training=torch.onnx.TrainingMode.PRESERVE,
                                      do_constant_folding=False, **kwargs)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export ({exporter}) failed: {first_line(exc)}") from None
        return onnx.load_model(path, load_external_data=True)
