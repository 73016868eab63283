"""What a technique runs on when the user names nothing: a layer by its position in the
bundle's layer table, and a class by rule. Resolved the same way for every bundle.

Layer positions (``default_layer`` of a technique, or ``--layer`` on the command line):
``early``, ``middle`` and ``late`` are the layers at 1/3, 3/5 and 5/6 of the way through the
layer table (index ``round(f * (n - 1))``; block outputs, ordered from the input). On the
embedded EfficientNet-Lite0 (21 layers) they are ``_blocks.5``, ``_blocks.10`` and
``_blocks.15``. A technique may move them (``Technique.positions``: feature inversion's
recipe works nearer the input). Any other value must be a layer name.

Default class: the class named ``flamingo`` where the labels have one (ImageNet: 130, a
colourful, well-known class), otherwise class 0.
"""

from __future__ import annotations

from ortviz.bundle.labels import LabelError, find_class
from ortviz.errors import UsageError, did_you_mean

POSITIONS = {"early": 1 / 3, "middle": 3 / 5, "late": 5 / 6}
DEFAULT_CLASS_NAME = "flamingo"


def resolve_layer(layers: list[dict], spec: str, positions: dict | None = None) -> str:
    """A layer name from a name or a position; UsageError naming the choices otherwise.
    ``positions``: a technique's own fractions for some of the positions (see
    ``Technique.positions``), over :data:`POSITIONS`."""
    names = [l["name"] for l in layers]
    if not names:
        raise UsageError("the bundle has no layers (re-export it with --layers default or all)")
    fractions = POSITIONS | (positions or {})
    if spec in fractions:
        return names[round(fractions[spec] * (len(names) - 1))]
    if spec in names:
        return spec
    hint = did_you_mean(spec, names) or f"layers: {', '.join(names)}"
    raise UsageError(f"unknown layer {spec!r}; {hint} (or early, middle, late)")


def default_class(labels: list[str]) -> int:
    try:
        return find_class(labels, DEFAULT_CLASS_NAME)
    except LabelError:
        return 0


def positions_text(layers: list[dict], positions: dict | None = None) -> str:
    """``early = L1, middle = L2, late = L3``: where each position lands in ``layers``."""
    return ", ".join(f"{p} = {resolve_layer(layers, p, positions)}" for p in POSITIONS)
