"""Objective plugins: third-party objectives through the ``ortviz.objectives`` entry-point group.

A plugin is one value, an :class:`ObjectivePlugin`, and two lines of ``pyproject.toml``::

    [project.entry-points."ortviz.objectives"]
    gram = "my_package.module:objective"

``make(*args)`` receives the string arguments of ``NAME(arg, ...)`` in an objective string
and returns an objective value, usually :func:`ortviz.objective.algebra.numpy_objective`; it runs on
every existing format-2 bundle (forward graph -> the plugin's numpy gradient -> the built-in
graphs). A plugin that fails to load is skipped, with its reason in :func:`discover`.
``ORTVIZ_PLUGINS``, when set, allows only the entry-point names it lists (as for techniques).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ortviz._util import entrypoints

GROUP = "ortviz.objectives"
# the objective string's own functions (ortviz.objective.text): no plugin may take their names
BUILT_IN = {"channel", "neuron", "energy", "class_score", "class_log_prob"}
_NAME = re.compile(r"[A-Za-z_][\w.-]*")


@dataclass(frozen=True)
class ObjectivePlugin:
    name: str
    summary: str
    make: Callable  # make(*args: str) -> ortviz.objective.algebra.Objective


@dataclass(frozen=True)
class LoadedObjective:
    name: str
    package: str
    plugin: ObjectivePlugin | None
    error: str | None = None


def _check(ep, value) -> ObjectivePlugin:
    if not isinstance(value, ObjectivePlugin):
        raise TypeError(f"{ep.value} is a {type(value).__name__}, not an ObjectivePlugin")
    if value.name != ep.name or not _NAME.fullmatch(value.name) or value.name in BUILT_IN:
        raise ValueError(f"entry point {ep.name!r} holds objective {value.name!r} "
                         "(names must match, be identifiers and not a built-in's)")
    if not callable(value.make):
        raise TypeError("its make is not callable")
    return value


def discover() -> list[LoadedObjective]:
    """Every installed objective plugin, loaded or with the one-line reason it was skipped."""
    return [LoadedObjective(p.name, p.package, p.value, p.error)
            for p in entrypoints.load_group(GROUP, _check)]


def objective_plugins() -> dict[str, ObjectivePlugin]:
    return {p.name: p.plugin for p in discover() if p.plugin is not None}
