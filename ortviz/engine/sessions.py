"""The engine: a bundle's graphs on stock ONNX Runtime.

Sessions are created once per graph and reused for every step (graph optimization
ENABLE_ALL, chosen thread count and execution provider). A gradient function returns the
objective's value and its gradient with respect to the input image.

With IO binding (the default on GPU providers) each gradient graph gets device buffers made
once: the image is copied into its buffer in place each step, the gradient is written to a
device buffer, and the objective's other inputs (class weights, target features), which stay
the same over a run, are uploaded only when they change. The regularizers still run in numpy,
so the image crosses to the host once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ortviz.bundle.graphs import ALIASES
from ortviz.bundle.reader import Bundle, BundleError
from ortviz.engine import STEPS, providers
from ortviz.errors import first_line
from ortviz.objective.bind import Bound


@dataclass
class Step:
    loss: float
    grad: np.ndarray


def _scalar(loss: np.ndarray) -> float:
    """A graph's loss: shape [1] (0-D in bundles exported before OpenVINO support)."""
    return float(np.asarray(loss).reshape(-1)[0])


# Where the numpy side of a render step runs (see ortviz.render.stepgraph): "numpy", or "graph" (the
# step's ONNX graphs on this engine's provider). "auto" takes the one measured faster per
# provider (bench/iteration.py; docs/step-graphs.md).
STEP_DEFAULT = {"cpu": "numpy"}

# Where a provider keeps its tensors, for IO binding.
DEVICES = {"cuda": "cuda", "tensorrt": "cuda", "rocm": "cuda", "migraphx": "cuda", "directml": "dml"}


class Engine:
    def __init__(self, bundle: Bundle | str | Path, provider: str = "auto",
                 threads: int | None = None, io_binding: bool | None = None, step: str = "auto"):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self._choice = providers.resolve(provider)
        self.provider = self._choice.short
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        self.step = STEP_DEFAULT.get(self.provider, "numpy") if step == "auto" else step
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._gradients: dict[tuple[str, str], object] = {}
        self.device = DEVICES.get(self.provider, "cpu")
        self.io_binding = self.device != "cpu" if io_binding is None else io_binding
        self.image_name = self.bundle.input["name"]
        self.image_shape = tuple(self.bundle.input["shape"])

    def _options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 4  # failures reach the user as one BundleError line
        if self.threads:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spin-waiting: on a loaded 2-core machine the
        # spinning default was the slowest setting (bench/threads.py, docs/speed.md "Threads").
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def model_session(self, key, build) -> ort.InferenceSession:
        """A session of a model made at run time (``build() -> onnx.ModelProto``: the step
        graphs of :mod:`ortviz.render.stepgraph`), with the bundle's graphs' options and provider,
        made once per ``key``."""
        sess = self._sessions.get(key)
        if sess is None:
            so = self._options()
            sess = self._sessions[key] = ort.InferenceSession(
                build().SerializeToString(), so, providers=self._choice.providers(so, self.threads))
        return sess

    def session(self, rel: str) -> ort.InferenceSession:
        sess = self._sessions.get(rel)
        if sess is None:
            so = self._options()
            path = self.bundle.path_of(rel)
            try:
                sess = ort.InferenceSession(str(path), so,
                                            providers=self._choice.providers(so, self.threads))
            except Exception as exc:  # name the bundle, not the pinned /proc/self/fd/N path
                msg = first_line(exc).replace(str(path.parent), str(self.bundle.root))
                raise BundleError(f"cannot load {rel}: {msg}") from None
            self._sessions[rel] = sess
        return sess

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image, dtype=np.float32)
        if image.shape != self.image_shape:
            raise ValueError(f"image shape {image.shape} != bundle input {self.image_shape}")
        return image

    def forward(self, image: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Named outputs of the forward graph (default: the logits)."""
        names = outputs or [self.bundle.manifest["logits"]["name"]]
        values = self.session(self.bundle.manifest["forward"]["file"]).run(
            names, {self.image_name: self._check_image(image)})
        return dict(zip(names, values))

    def logits(self, image: np.ndarray) -> np.ndarray:
        return self.forward(image)[self.bundle.manifest["logits"]["name"]]

    def features(self, image: np.ndarray, layer: str) -> np.ndarray:
        tensor = next((l["tensor"] for l in self.bundle.layers if l["name"] == layer), None)
        if tensor is None:
            raise BundleError(f"bundle has no layer {layer!r}")
        return self.forward(image, [tensor])[tensor]

    def bind(self, objectives: list, per_slot: bool = False) -> Bound:
        """Objective values (:mod:`ortviz.objective.algebra`) bound to this engine's graphs:
        ``f(x) -> (loss, grad)``; with ``per_slot`` objective i is batch slot i's."""
        return Bound(self, objectives, per_slot=per_slot)

    def gradient(self, objective: str, layer: str):
        """``f(image, **inputs) -> Step`` for one of the bundle's gradient graphs (made once
        per graph: techniques ask for it every iteration)."""
        f = self._gradients.get((objective, layer))
        if f is None:
            f = self._gradients[(objective, layer)] = self._make_gradient(objective, layer)
        return f

    def _make_gradient(self, objective: str, layer: str):
        alias = ALIASES.get(objective)
        if alias is not None:
            return self._alias_gradient(alias, layer)
        entry = self.bundle.graph(objective, layer)
        sess = self.session(entry.file)
        names = [entry.outputs["loss"], entry.outputs["grad"]]
        extra = {k: tuple(v) for k, v in entry.inputs.items() if k != self.image_name}

        def feeds_of(image: np.ndarray, inputs: dict) -> dict:
            feeds = {self.image_name: self._check_image(image)}
            for k, shape in extra.items():
                if k not in inputs:
                    raise ValueError(f"{objective} needs input {k!r}")
                v = np.ascontiguousarray(inputs[k], dtype=np.float32)
                if v.shape != shape:
                    raise ValueError(f"{objective} input {k!r} has shape {v.shape}, needs {shape}")
                feeds[k] = v
            return feeds

        if self.io_binding:
            return self._bound(sess, names, feeds_of)

        def f(image: np.ndarray, **inputs) -> Step:
            loss, grad = sess.run(names, feeds_of(image, inputs))
            return Step(_scalar(loss), grad)

        return f

    def _alias_gradient(self, alias, layer: str):
        """A format-1 objective (``feature_energy``, ``class_score``, ...) on the built-in graph
        that serves it: its inputs become that graph's weights, its constant joins the loss."""
        key = (alias.via.name, layer)  # the cache, not self.gradient: one call per step
        inner = self._gradients.get(key)
        if inner is None:
            inner = self._gradients[key] = self._make_gradient(*key)
        entry = self.bundle.graph(alias.via.name, layer)
        shape = tuple(next(v for k, v in entry.inputs.items() if k != self.image_name))

        def f(image: np.ndarray, **inputs) -> Step:
            try:
                feeds, constant = alias.translate(inputs, shape)
            except KeyError as exc:
                raise ValueError(f"{alias.name} needs input {exc.args[0]!r}") from None
            step = inner(image, **feeds)
            return Step(step.loss + constant, step.grad)

        return f

    def _bound(self, sess: ort.InferenceSession, names: list[str], feeds_of):
        """A gradient function running through IO binding with buffers made once."""
        binding = sess.io_binding()
        image = ort.OrtValue.ortvalue_from_shape_and_type(list(self.image_shape), np.float32,
                                                           self.device, 0)
        grad = ort.OrtValue.ortvalue_from_shape_and_type(list(self.image_shape), np.float32,
                                                          self.device, 0)
        binding.bind_ortvalue_input(self.image_name, image)
        binding.bind_output(names[0], "cpu")
        binding.bind_ortvalue_output(names[1], grad)
        uploaded: dict[str, tuple[np.ndarray, ort.OrtValue]] = {}

        def f(x: np.ndarray, **inputs) -> Step:
            feeds = feeds_of(x, inputs)
            image.update_inplace(feeds.pop(self.image_name))
            for k, v in feeds.items():
                held = uploaded.get(k)
                if held is None or not np.array_equal(held[0], v):
                    value = ort.OrtValue.ortvalue_from_numpy(v.copy(), self.device, 0)
                    uploaded[k] = (v.copy(), value)
                    binding.bind_ortvalue_input(k, value)
            sess.run_with_iobinding(binding)
            loss = binding.get_outputs()[0].numpy()
            return Step(_scalar(loss), np.array(grad.numpy()))  # a copy: the buffer is reused

        return f
