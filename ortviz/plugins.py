"""Technique plugins: discovery through the ``ortviz.techniques`` entry-point group.

A plugin is one module exposing a :class:`~ortviz.technique.Technique` value and two lines
of ``pyproject.toml``::

    [project.entry-points."ortviz.techniques"]
    my-technique = "my_package.module:technique"

The built-in techniques register exactly this way. ``ORTVIZ_PLUGINS`` (comma-separated
entry-point names) is an allow-list: when set, only the named plugins are loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

from .technique import Technique

GROUP = "ortviz.techniques"
ALLOW_ENV = "ORTVIZ_PLUGINS"


@dataclass(frozen=True)
class Loaded:
    name: str
    package: str
    version: str
    technique: Technique | None
    error: str | None = None


def _allowed() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def discover() -> list[Loaded]:
    """Every installed technique plugin, loaded or with the one-line reason it failed."""
    allowed = _allowed()
    found: list[Loaded] = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist
        package = dist.metadata["Name"] if dist else "?"
        version = dist.version if dist else "?"
        try:
            value = ep.load()
            if not isinstance(value, Technique):
                raise TypeError(f"{ep.value} is a {type(value).__name__}, not an ortviz Technique")
            if value.name != ep.name:
                raise ValueError(f"entry point {ep.name!r} holds technique named {value.name!r}")
            found.append(Loaded(ep.name, package, version, value))
        except Exception as exc:  # a broken plugin must not break the CLI
            found.append(Loaded(ep.name, package, version, None, f"{type(exc).__name__}: {exc}"))
    return found


def techniques() -> dict[str, Technique]:
    """The techniques that loaded, by name."""
    return {p.name: p.technique for p in discover() if p.technique is not None}
