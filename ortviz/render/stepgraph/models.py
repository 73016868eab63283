"""Whole ONNX models from the pieces of :mod:`ortviz.render.stepgraph.graphs`, for one recipe.

A :class:`Recipe` holds what the graphs bake in: the batch, canvas and view sizes, the 1/f scale,
the colour matrix, the valid range, the warp's fill value, the sign of the step and Adam's
constants. Its methods build the models the step runs (``param``, ``pre``, ``post``) and the
separate pieces the exactness tests check (``spectrum``, ``param_adjoint``, ``warp``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ortviz.render.stepgraph import graphs as G


@dataclass(frozen=True)
class Recipe:
    n: int
    hw: tuple            # the canvas (the parameterization's image)
    view: tuple          # what the warp makes: the model's input size
    scale: np.ndarray    # (H, W//2+1) float32, Fourier.scale
    colour: np.ndarray   # (3, 3) float32
    low: np.ndarray      # (1, 3, 1, 1) float32
    span: np.ndarray     # (1, 3, 1, 1) float32
    value: np.ndarray    # (3,) the warp's constant fill (zeros: none)
    sign: float = -1.0   # the loop descends sign * value: -1 maximizes
    lr: float = 0.05
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    @classmethod
    def of(cls, param, view, value, sign: float, opt) -> "Recipe":
        """The recipe of a :class:`ortviz.render.param.Colour` over a :class:`ortviz.render.param.Fourier`
        (sigmoid squash) and an :class:`ortviz.render.optim.Adam`."""
        n, _, h, w = param.shape
        return cls(int(n), (int(h), int(w)), tuple(int(v) for v in view),
                   np.asarray(param.inner.scale, np.float32), np.asarray(param.c, np.float32),
                   np.asarray(param.low, np.float32), np.asarray(param.span, np.float32),
                   np.asarray(value, np.float32).reshape(-1), float(sign),
                   float(opt.lr), float(opt.b1), float(opt.b2), float(opt.eps))

    @property
    def planar_shape(self) -> tuple:
        h, w = self.hw
        return (self.n, 3, 2, h, w // 2 + 1)

    @property
    def key(self) -> tuple:
        """What tells two recipes' graphs apart (a session cache key)."""
        return (self.n, self.hw, self.view, self.scale.tobytes(), self.colour.tobytes(),
                self.low.tobytes(), self.span.tobytes(), self.value.tobytes(), self.sign,
                self.lr, self.b1, self.b2, self.eps)

    # -- the parts -----------------------------------------------------------------------------
    def _image(self, b: G.Builder, q: str) -> tuple[str, str]:
        h, w = self.hw
        u = G.spectrum(b, q, self.n, h, w, self.scale)
        return G.colour(b, u, self.n, h, w, self.colour, self.low, self.span)

    def _image_t(self, b: G.Builder, g: str, s: str) -> str:
        h, w = self.hw
        gu = G.colour_t(b, g, s, self.n, h, w, self.colour, self.span)
        return G.spectrum_t(b, gu, self.n, h, w, self.scale)

    def _canvas(self) -> list:
        return [self.n, 3, *self.hw]

    # -- models --------------------------------------------------------------------------------
    def spectrum(self) -> onnx.ModelProto:
        """Planar parameters -> the unbounded image (linear)."""
        b = G.Builder()
        u = G.spectrum(b, b.input("q", self.planar_shape), self.n, *self.hw, self.scale)
        b.output(u, "u", self._canvas())
        return b.model("spectrum")

    def spectrum_adjoint(self) -> onnx.ModelProto:
        b = G.Builder()
        gq = G.spectrum_t(b, b.input("g", self._canvas()), self.n, *self.hw, self.scale)
        b.output(gq, "gq", self.planar_shape)
        return b.model("spectrum_adjoint")

    def param(self) -> onnx.ModelProto:
        """Planar parameters -> the model-space image ``x`` and its sigmoid ``s``."""
        b = G.Builder()
        x, s = self._image(b, b.input("q", self.planar_shape))
        b.output(x, "x", self._canvas())
        b.output(s, "s", self._canvas())
        return b.model("param")

    def param_adjoint(self) -> onnx.ModelProto:
        """``(g, s) -> gq``: the parameterization's exact VJP at the image whose sigmoid is ``s``."""
        b = G.Builder()
        g, s = b.input("g", self._canvas()), b.input("s", self._canvas())
        b.output(self._image_t(b, g, s), "gq", self.planar_shape)
        return b.model("param_adjoint")

    def warp(self) -> onnx.ModelProto:
        """``x`` and the draw's ``ry``, ``rxt``, ``ridx``, ``rw`` (and ``rfill`` with a fill
        value) -> the model's input ``view``.
        This is the ``pre`` graph of a step."""
        b = G.Builder()
        v = G.warp(b, b.input("x", self._canvas()), self.n, self.view, self.value)
        b.output(v, "view", [self.n, 3, *self.view])
        return b.model("warp")

    def warp_adjoint(self) -> onnx.ModelProto:
        """``gv`` and ``ry``, ``rxt``, ``tidx``, ``tw`` -> the gradient on the canvas."""
        b = G.Builder()
        b.output(G.warp_t(b, b.input("gv", [self.n, 3, *self.view]), self.n, self.view), "gx", self._canvas())
        return b.model("warp_adjoint")

    def _post(self, b: G.Builder, gv: str) -> None:
        s, q = b.input("s", self._canvas()), b.input("q", self.planar_shape)
        m, v = b.input("m", self.planar_shape), b.input("v", self.planar_shape)
        gx = G.warp_t(b, gv, self.n, self.view)
        if self.sign != 1.0:
            gx = b.op("Mul", gx, b.const(self.sign, "sign"))
        gq = self._image_t(b, gx, s)
        q2, m2, v2 = G.adam(b, q, m, v, gq, self.lr, self.b1, self.b2, self.eps)
        x2, s2 = self._image(b, q2)
        for value, name in ((q2, "q2"), (m2, "m2"), (v2, "v2")):
            b.output(value, name, self.planar_shape)
        b.output(x2, "x2", self._canvas())
        b.output(s2, "s2", self._canvas())

    def post(self) -> onnx.ModelProto:
        """The rest of a step after the gradient graph: ``gv`` (the objective's gradient on the
        model input), the sigmoid ``s`` of the current image, the parameters ``q`` and Adam's
        ``m``, ``v`` -> ``q2``, ``m2``, ``v2`` and the next image ``x2`` with its ``s2``."""
        b = G.Builder()
        self._post(b, b.input("gv", [self.n, 3, *self.view]))
        return b.model("post")

    def fused(self, grad: onnx.ModelProto, image: str, grad_out: str) -> onnx.ModelProto:
        """pre, a gradient graph (``grad``, weights loaded; its input ``image``, its output
        ``grad_out``) and post as one model: one session run per iteration. Its inputs are
        pre's and post's (less ``gv``) and the gradient graph's others; its outputs the gradient
        graph's others and post's."""
        b = G.Builder(prefix="stepgraph/")
        G.warp(b, b.input("x", self._canvas()), self.n, self.view, self.value)
        b.nodes[-1].output[0] = image                     # the warp's last Reshape feeds the graph
        pre = list(b.nodes)
        b.nodes.clear()
        self._post(b, grad_out)
        g = grad.graph
        inputs = [i for i in g.input if i.name != image] + b.inputs
        outputs = [o for o in g.output if o.name != grad_out] + b.outputs
        graph = onnx.helper.make_graph(pre + list(g.node) + b.nodes, "fused", inputs, outputs,
                                       list(g.initializer) + b.consts)
        m = onnx.helper.make_model(graph, opset_imports=grad.opset_import, producer_name="ortviz.stepgraph")
        m.ir_version = grad.ir_version
        return m
