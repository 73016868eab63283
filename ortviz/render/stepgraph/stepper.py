"""One render step on the runtime, state kept between steps: the ``pre`` graph (the drawn warp),
the objective (the bundle's gradient graph) and the ``post`` graph (the warp's and the
parameterization's adjoints, Adam and the next image). :mod:`.fused` merges the three into one
session run where it can; :mod:`.loop` chooses.
"""

from __future__ import annotations

import numpy as np

from ortviz.render import transforms as tf
from ortviz.render.stepgraph import plans
from ortviz.render.stepgraph.graphs import planar, unplanar
from ortviz.render.stepgraph.models import Recipe


class Stepper:
    """The state of a run on the step graphs: the planar parameters, Adam's moments, the image
    and its sigmoid, all as the graphs hand them over. ``step`` runs one iteration."""

    def __init__(self, engine, param, transforms, optimizer, p, out_hw, maximize: bool = True):
        self.hw, self.out_hw = tuple(param.shape[2:]), tuple(out_hw)
        self.transforms, self.opt = transforms, optimizer
        recipe = Recipe.of(param, out_hw, plans.fill_value(transforms), -1.0 if maximize else 1.0,
                           optimizer)
        key = ("stepgraph",) + recipe.key
        self.s_pre = engine.model_session(key + ("pre",), recipe.warp)
        self.s_post = engine.model_session(key + ("post",), recipe.post)
        self.pre_in = {i.name for i in self.s_pre.get_inputs()}
        self.q = planar(np.asarray(p, np.float32))
        self.m, self.v = np.zeros_like(self.q), np.zeros_like(self.q)
        self.x, self.s = engine.model_session(key + ("param",), recipe.param).run(["x", "s"], {"q": self.q})

    def step(self, rng, objective) -> float:
        """Draw the transforms from ``rng``, run pre, ``objective``, post; the objective's value."""
        draw = plans.feeds(tf.sample(self.transforms, rng, self.hw, self.out_hw), self.hw, self.out_hw,
                            self.q.shape[0])
        if draw is None:
            raise ValueError("a transform draw the step graphs cannot take; use step='numpy'")
        pre = {k: v for k, v in draw.items() if k in self.pre_in}
        view, = self.s_pre.run(["view"], {"x": self.x, **pre})
        value, g = objective(view)
        opt = self.opt
        opt.t += 1
        feeds = {"gv": np.asarray(g, np.float32), "s": self.s, "q": self.q, "m": self.m, "v": self.v,
                 **{k: draw[k] for k in ("ry", "rxt", "tidx", "tw")},
                 "d1": np.array([1 - opt.b1 ** opt.t], np.float32),
                 "d2": np.array([1 - opt.b2 ** opt.t], np.float32)}
        self.q, self.m, self.v, self.x, self.s = self.s_post.run(["q2", "m2", "v2", "x2", "s2"], feeds)
        return float(value)

    def finish(self) -> None:
        """After the last step: the state on the host (see :class:`FusedStepper`)."""

    def params(self) -> np.ndarray:
        """The parameters in :class:`ortviz.render.param.Fourier`'s layout."""
        return unplanar(self.q)
