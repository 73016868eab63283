"""What a technique plugin declares.

A technique names the objectives it needs from a bundle (the exporter builds a gradient graph
for each) and, in the engine, how it starts and steps. This module holds the declaration only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .objectives import Objective


@dataclass(frozen=True)
class Need:
    """One objective a technique needs, and the tensors it is built on.

    ``on`` is ``"logits"`` for classifier-output objectives or ``"layers"`` for one graph per
    layer of the bundle's layer table.
    """

    objective: Objective
    on: str = "layers"

    def __post_init__(self):
        want = "logits" if self.on == "logits" else "layer"
        if self.on not in ("logits", "layers") or self.objective.reads != want:
            raise ValueError(f"objective {self.objective.name} reads {self.objective.reads}, "
                             f"cannot be built on {self.on!r}")


@dataclass(frozen=True)
class Technique:
    name: str
    summary: str
    needs: tuple[Need, ...]
    run: Callable | None = field(default=None, repr=False, compare=False)
