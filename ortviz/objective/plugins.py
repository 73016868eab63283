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
from importlib import metadata
from typing import Callable

GROUP = "ortviz.objectives"
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


def discover() -> list[LoadedObjective]:
    import os
    from ortviz.objective.text import BUILT_IN

    raw = os.environ.get("ORTVIZ_PLUGINS")
    allowed = None if raw is None else {n.strip() for n in raw.split(",") if n.strip()}
    found = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            continue
        package = ep.dist.metadata["Name"] if ep.dist else "?"
        try:
            value = ep.load()
            if not isinstance(value, ObjectivePlugin):
                raise TypeError(f"{ep.value} is a {type(value).__name__}, not an ObjectivePlugin")
            if value.name != ep.name or not _NAME.fullmatch(value.name) or value.name in BUILT_IN:
                raise ValueError(f"entry point {ep.name!r} holds objective {value.name!r} "
                                 "(names must match, be identifiers and not a built-in's)")
            if not callable(value.make):
                raise TypeError("its make is not callable")
            found.append(LoadedObjective(ep.name, package, value))
        except BaseException as exc:  # noqa: BLE001 - even SystemExit: a plugin must not break the CLI
            found.append(LoadedObjective(ep.name, package, None, f"{type(exc).__name__}: {exc}"))
    return found


def objective_plugins() -> dict[str, ObjectivePlugin]:
    return {p.name: p.plugin for p in discover() if p.plugin is not None}
