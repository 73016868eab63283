"""Technique plugins: discovery through the ``ortviz.techniques`` entry-point group.

A plugin is one module exposing a :class:`~ortviz.techniques.spec.Technique` value and two lines
of ``pyproject.toml``::

    [project.entry-points."ortviz.techniques"]
    my-technique = "my_package.module:technique"

The built-in techniques register exactly this way. ``ORTVIZ_PLUGINS`` (comma-separated
entry-point names) is an allow-list: when set, only the named plugins are loaded (the one
loader and allow-list of techniques and objectives: :mod:`ortviz._util.entrypoints`).

A plugin cannot take the tool down: whatever it does at import or in its declaration, it is
skipped with one line naming it (``skipped_lines``), and every other command works; what its
run does is guarded in ``guard``.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import re
from dataclasses import dataclass

import numpy as np

from ortviz._util import entrypoints
from ortviz._util.entrypoints import ALLOW_ENV  # noqa: F401 (ortviz plugins names it)
from ortviz.errors import first_line
from ortviz.techniques.spec import Need, Param, Technique

GROUP = "ortviz.techniques"


@dataclass(frozen=True)
class Loaded:
    name: str
    package: str
    version: str
    technique: Technique | None
    error: str | None = None


# what every technique command already has (``cli/techniques.py``): a parameter may not take these
COMMON = {"model", "seed", "provider", "threads", "step", "output", "snapshot_every", "layer",
          "targets", "image", "help", "ctx"}
COMMON_FLAGS = {"--model", "-m", "--seed", "--provider", "--threads", "--step", "--output", "-o",
                "--snapshot-every", "--layer", "-l", "--class", "-c", "--image", "-i", "--help"}
TYPES = (int, float, str, bool)
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _check(ep, value) -> Technique:
    """An entry point's value, checked as a technique declaration; anything wrong raises."""
    if not isinstance(value, Technique):
        raise TypeError(f"{ep.value} is a {type(value).__name__}, not an ortviz Technique")
    if value.name != ep.name:
        raise ValueError(f"entry point {ep.name!r} holds technique named {value.name!r}")
    return check_declaration(value)


def check_declaration(t: Technique) -> Technique:
    """Refuse a declaration the CLI and runner cannot use; return it with each parameter's check
    made safe (finite numbers, the right type, a plugin check that raises is a refusal)."""
    if not isinstance(t.name, str) or not NAME.fullmatch(t.name):
        raise ValueError(f"name {t.name!r} is not lower-case letters, digits and '-'")
    if not isinstance(t.summary, str):
        raise TypeError("summary is not a string")
    # empty needs: the technique binds run-time objectives (feature-visualization)
    if not isinstance(t.needs, tuple) or not all(isinstance(n, Need) for n in t.needs):
        raise TypeError("needs is not a tuple of Need")
    if t.start not in ("noise", "photo"):
        raise ValueError(f"start {t.start!r} is not 'noise' or 'photo'")
    if t.default_layer is not None and not isinstance(t.default_layer, str):
        raise TypeError(f"default_layer {t.default_layer!r} is not a string")
    if t.positions is not None and not (
            isinstance(t.positions, dict) and set(t.positions) <= {"early", "middle", "late"}
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                    for v in t.positions.values())):
        raise ValueError(f"positions {t.positions!r} is not a dict of early/middle/late to "
                         "fractions from 0 to 1")
    if not isinstance(t.description, str):
        raise TypeError("description is not a string")
    if t.resolve is not None and not callable(t.resolve):
        raise TypeError("resolve is not callable")
    if not callable(t.run):
        raise TypeError("run is not callable")
    if t.results is not None and not callable(t.results):
        raise TypeError("results is not callable")
    if not isinstance(t.params, tuple) or not all(isinstance(p, Param) for p in t.params):
        raise TypeError("params is not a tuple of Param")
    seen: set[str] = set()
    for p in t.params:
        if not isinstance(p.name, str) or not p.name.isidentifier() or keyword.iskeyword(p.name) \
                or p.name.startswith("_"):
            raise ValueError(f"parameter name {p.name!r} is not a plain identifier")
        flag = "--" + p.name.replace("_", "-")
        if p.name in COMMON or flag in COMMON_FLAGS:
            raise ValueError(f"parameter {p.name!r} clashes with the common option {flag}")
        if p.name in seen:
            raise ValueError(f"parameter {p.name!r} is declared twice")
        seen.add(p.name)
        if p.type not in TYPES:
            raise TypeError(f"parameter {p.name!r} has type {getattr(p.type, '__name__', p.type)!r}; "
                            "supported: int, float, str, bool")
        if not isinstance(p.help, str):
            raise TypeError(f"parameter {p.name!r} has no help text")
        if p.check is not None and not callable(p.check):
            raise TypeError(f"parameter {p.name!r} has a check that is not callable")
    safe = tuple(dataclasses.replace(p, check=_safe_check(p)) for p in t.params)
    for p in safe:
        msg = p.check(p.default)
        if msg:
            raise ValueError(f"parameter {p.name!r}: its default {p.default!r} {msg}")
    return dataclasses.replace(t, params=safe)


def _safe_check(p: Param):
    inner = p.check

    def check(value):
        if p.type is bool:
            ok = isinstance(value, (bool, np.bool_))
        elif p.type is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        elif p.type is float:
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        else:  # a str parameter whose own check accepts other values (objective values: API)
            ok = isinstance(value, str) or inner is not None
        if not ok:
            return f"must be {p.type.__name__}, got {value!r}"
        if p.type is float and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        if p.type is str and isinstance(value, str) and not value.strip() and p.default.strip():
            return "must not be empty"  # unless empty is the default's own meaning ("none")
        if inner is None:
            return None
        try:
            msg = inner(value)
        except Exception as exc:  # the plugin's own check failed: refuse the value, in one line
            return f"{value!r} is refused: its check raised {type(exc).__name__}: {first_line(exc)}"
        return None if not msg else (msg if isinstance(msg, str) else f"{value!r} is refused")

    return check


def discover() -> list[Loaded]:
    """Every installed technique plugin, loaded or with the one-line reason it was skipped.

    Whatever a plugin does at import or in its declaration (any exception, ``SystemExit``,
    ``KeyboardInterrupt``, a bad or clashing parameter) skips that plugin only; two plugins
    with one name are both skipped, unless one is built in (package ``ortviz``), which keeps it.
    """
    found = [Loaded(p.name, p.package, p.version, p.value, p.error)
             for p in entrypoints.load_group(GROUP, _check)]
    return _unclash(found)


def _unclash(found: list[Loaded]) -> list[Loaded]:
    by_name: dict[str, list[Loaded]] = {}
    for p in found:
        by_name.setdefault(p.name, []).append(p)
    out = []
    for name, group in by_name.items():
        if len(group) == 1:
            out += group
            continue
        builtin = [p for p in group if p.package == "ortviz" and p.technique is not None]
        keep = builtin[0] if len(builtin) == 1 else None
        others = ", ".join(f"{p.package} {p.version}" for p in group)
        for p in group:
            if p is keep:
                out.append(p)
            else:
                out.append(dataclasses.replace(p, technique=None, error=f"the name {name!r} is "
                                               f"claimed by several packages ({others})"))
    return out


def skipped_lines() -> list[str]:
    """One line per plugin that was skipped, naming it and why."""
    return [f"warning: plugin {p.name} ({p.package} {p.version}) skipped: {p.error}"
            for p in discover() if p.technique is None]


def hidden_by_allow_list(name: str) -> str | None:
    """If ``ORTVIZ_PLUGINS`` hides the installed technique ``name``, a sentence saying so."""
    return entrypoints.hidden_by_allow_list(GROUP, name, "technique")


def techniques() -> dict[str, Technique]:
    """The techniques that loaded, by name."""
    return {p.name: p.technique for p in discover() if p.technique is not None}
