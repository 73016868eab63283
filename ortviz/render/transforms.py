"""Random transforms of the picture before the model sees it (transformation robustness).

A transform pipeline is a list, applied in order (Lucent style): ``[Pad(12), RandomCrop(8),
RandomScale(...), RandomRotate(...), RandomCrop(4)]``. Each transform draws its random
parameters from an ``np.random.Generator`` and returns a coordinate map (output pixel ->
input pixel, a 3x3 homogeneous matrix) and its output size. :func:`sample` composes the
maps of the list, ends with a resize to the model's input size when the sizes differ, and
returns a forward map and its exact adjoint (:class:`Chain` of :class:`ortviz.render.warp.Warp`).

The composed map is sampled once for all axis-aligned transforms (one bilinear interpolation
for pads, crops, scales and the resize together, not one per transform: no blur accumulates),
and once more for a rotation, whose plan is cached per angle (so the numpy side stays a
small part of a step). Where the
map reads outside the canvas, the pipeline's boundary rule applies, set by its ``Pad``
(``constant`` with a value, or ``reflect``) or ``Jitter`` (``wrap``, a circular shift, as the
classic loops did); ``edge`` (clamp) when neither is present.

Presets (:func:`preset`): ``none``; ``light`` — a circular jitter of up to 12 pixels (today's
pixel loops); ``standard`` — Lucid's transformation robustness (Olah et al. 2017): constant pad
12 with the mean grey, crop 8, scale 0.9..1.1 in steps of 0.02, rotation -10..10 degrees
(0 five times more often), crop 4; ``wide`` — the same with the scale drawn from 0.8..1.2 in
steps of 0.04 (measured for class visualization: the default model's pictures recognized a little
more often, an exported Lite2's not; docs/quality.md, issue 21). ``RandomBox`` crops a random
box of the canvas, for several crops per step of a canvas larger than the model (MACO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ortviz.render.warp import Warp


def _translate(dy: float, dx: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dy], [0.0, 1.0, dx], [0.0, 0.0, 1.0]])


def _resize_map(in_hw, out_hw) -> np.ndarray:
    """Half-pixel-centre resize (align_corners=False), as :func:`ortviz.render.modelspace.resize`."""
    sy, sx = in_hw[0] / out_hw[0], in_hw[1] / out_hw[1]
    return np.array([[sy, 0.0, 0.5 * sy - 0.5], [0.0, sx, 0.5 * sx - 0.5], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Pad:
    """Grow the canvas by ``size`` on each side; ``mode`` constant (``value``: a model-space
    value, one per channel or one for all) or reflect."""
    size: int
    mode: str = "constant"
    value: tuple | float = 0.0

    def boundary(self):
        return self.mode, self.value

    def sample(self, rng, hw):
        return _translate(-self.size, -self.size), (hw[0] + 2 * self.size, hw[1] + 2 * self.size)


@dataclass(frozen=True)
class RandomCrop:
    """Crop ``d`` pixels off each axis at a random offset in 0..d (Lucid's ``jitter``)."""
    d: int

    def sample(self, rng, hw):
        oy, ox = (int(v) for v in rng.integers(0, self.d + 1, size=2))
        return _translate(oy, ox), (max(1, hw[0] - self.d), max(1, hw[1] - self.d))


@dataclass(frozen=True)
class RandomScale:
    """Resize by a factor drawn from ``scales``."""
    scales: tuple

    def sample(self, rng, hw):
        s = float(self.scales[int(rng.integers(len(self.scales)))])
        out = (max(1, round(hw[0] * s)), max(1, round(hw[1] * s)))
        return _resize_map(hw, out), out


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles``."""
    angles: tuple

    def sample(self, rng, hw):
        a = math.radians(float(self.angles[int(rng.integers(len(self.angles)))]))
        c, s = math.cos(a), math.sin(a)
        cy, cx = (hw[0] - 1) / 2, (hw[1] - 1) / 2
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return _translate(cy, cx) @ rot @ _translate(-cy, -cx), tuple(hw)


@dataclass(frozen=True)
class Jitter:
    """Circular shift by a random (oy, ox) in -d..d (``np.roll``); sets the wrap boundary."""
    d: int

    def boundary(self):
        return "wrap", 0.0

    def sample(self, rng, hw):
        oy, ox = (int(v) for v in rng.integers(-self.d, self.d + 1, size=2))
        return _translate(-oy, -ox), tuple(hw)


@dataclass(frozen=True)
class Zoom:
    """Scale the content about the centre by a factor uniform in [1 - f, 1 + f], same size."""
    f: float

    def sample(self, rng, hw):
        z = 1.0 + float(rng.uniform(-self.f, self.f)) if self.f else 1.0
        cy, cx = (hw[0] - 1) / 2, (hw[1] - 1) / 2
        return _translate(cy, cx) @ np.diag([1 / z, 1 / z, 1.0]) @ _translate(-cy, -cx), tuple(hw)


@dataclass(frozen=True)
class RandomBox:
    """A random square box whose side is a fraction in [lo, hi] of the canvas's shorter side,
    at a random position (MACO's crops; with several views per step)."""
    lo: float = 0.3
    hi: float = 1.0

    def sample(self, rng, hw):
        side = max(1, round(min(hw) * float(rng.uniform(self.lo, self.hi))))
        oy, ox = int(rng.integers(0, hw[0] - side + 1)), int(rng.integers(0, hw[1] - side + 1))
        return _translate(oy, ox), (side, side)


def boundary(transforms) -> tuple[str, object]:
    """The boundary rule of a pipeline: its Pad's or Jitter's; ``edge`` without either."""
    rules = {t.boundary() for t in transforms if hasattr(t, "boundary")}
    if len(rules) > 1:
        raise ValueError(f"one boundary rule per pipeline, got {sorted(map(str, rules))}")
    return next(iter(rules)) if rules else ("edge", 0.0)


class Chain:
    """Warps applied in order; the adjoint runs them back in reverse."""

    def __init__(self, warps):
        self.warps = [w for w in warps if not w.identity] or warps[-1:]
        self.in_hw, self.out_hw = warps[0].in_hw, warps[-1].out_hw

    def forward(self, x):
        for w in self.warps:
            x = w.forward(x)
        return x

    def adjoint(self, g):
        for w in reversed(self.warps):
            g = w.adjoint(g)
        return g

    def linear(self) -> "Chain":
        """The same maps without the constant fill: the linear part ``adjoint`` transposes."""
        return Chain([w.linear() for w in self.warps])


def _rotation_about_centre(hw, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    cy, cx = (hw[0] - 1) / 2, (hw[1] - 1) / 2
    return _translate(cy, cx) @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ _translate(-cy, -cx)


def _split_rotation(m: np.ndarray, out_hw):
    """``m = b @ r`` with ``b`` axis-aligned and ``r`` a rotation about the output's centre,
    or None when the linear part is not of that form (a diagonal times a rotation)."""
    lin = m[:2, :2]
    # rounded so the same drawn angle finds its cached plan again (b absorbs the rest)
    angle = round(math.atan2(lin[1, 0], lin[1, 1]), 9)
    if angle == 0.0:
        return None
    r = _rotation_about_centre(out_hw, angle)
    b = m @ np.linalg.inv(r)
    if abs(b[0, 1]) > 1e-9 * abs(b[0, 0]) or abs(b[1, 0]) > 1e-9 * abs(b[1, 1]):
        return None
    b[0, 1] = b[1, 0] = 0.0
    return b, r


def sample(transforms, rng: np.random.Generator, in_hw, out_hw=None) -> Chain:
    """Draw every transform of the list and compose them into one map from an ``in_hw``
    canvas; then to ``out_hw`` (the model's input size) if given. Returns a :class:`Chain`
    with ``forward`` and its exact ``adjoint``.

    A map with a rotation is sampled as an axis-aligned warp (interpolation matrices) and
    then the rotation about the output's centre (its plan cached per angle): the same
    composed coordinate map, interpolated twice, the rotation's corners reading the
    boundary rule."""
    mode, value = boundary(transforms)
    m, hw = np.eye(3), (int(in_hw[0]), int(in_hw[1]))
    for t in transforms:
        step, hw = t.sample(rng, hw)
        m = m @ step
    if out_hw is not None and tuple(out_hw) != hw:
        m, hw = m @ _resize_map(hw, out_hw), tuple(out_hw)
    split = _split_rotation(m, hw)
    if split is None:
        return Chain([Warp(in_hw, hw, m, mode=mode, value=value)])
    b, r = split
    return Chain([Warp(in_hw, hw, b, mode=mode, value=value), Warp(hw, hw, r, mode=mode, value=value)])


PRESETS = ("none", "light", "standard", "wide")


def preset(name: str, fill=0.0) -> list:
    """The transform list called ``name`` (see the module); ``fill`` is the model-space value
    of the mean grey, for the standard preset's pad."""
    if name == "none":
        return []
    if name == "light":
        return [Jitter(12)]
    if name in ("standard", "wide"):
        value = tuple(float(v) for v in np.asarray(fill, np.float64).reshape(-1))
        step = 0.02 if name == "standard" else 0.04
        scales = tuple(round(1 + (i - 5) * step, 2) for i in range(11))
        angles = tuple(range(-10, 11)) + (0,) * 5
        return [Pad(12, "constant", value), RandomCrop(8), RandomScale(scales),
                RandomRotate(angles), RandomCrop(4)]
    raise ValueError(f"unknown transform preset {name!r}; one of {', '.join(PRESETS)}")
