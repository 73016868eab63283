"""The one plugin loader: an entry-point group's plugins, each loaded or skipped with a reason.

Techniques (``ortviz.techniques``) and objectives (``ortviz.objectives``) load through
:func:`load_group`. ``ORTVIZ_PLUGINS`` (comma-separated entry-point names) is the one
allow-list of both: when set, only the named plugins load.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from ortviz._util import signals
from ortviz.errors import first_line

ALLOW_ENV = "ORTVIZ_PLUGINS"


@dataclass(frozen=True)
class Loaded:
    """One plugin: its value when it loaded, else the one-line reason it was skipped."""
    name: str
    package: str
    version: str
    value: Any
    error: str | None = None


def allowed() -> set[str] | None:
    """The names ``ORTVIZ_PLUGINS`` allows (None: it is not set, all load)."""
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def load_group(group: str, check: Callable[[Any, Any], Any]) -> list[Loaded]:
    """Every allowed entry point of ``group``, sorted by name. ``check(ep, value)`` returns the
    value to keep or raises; whatever the import or the check does (any exception,
    ``SystemExit``, ``KeyboardInterrupt``, printing) skips that plugin only."""
    allow = allowed()
    found: list[Loaded] = []
    # a Ctrl-C (or another ending signal) while plugins load is the user's, not a plugin's
    # failure: held until they are loaded, then it ends the run as anywhere else
    with signals.held() as got:
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            if allow is not None and ep.name not in allow:
                continue
            found.append(_load(ep, check))
    if got:
        raise signals.Interrupted(got[0])
    return found


def _load(ep, check) -> Loaded:
    dist = ep.dist
    package = dist.metadata["Name"] if dist else "?"
    version = dist.version if dist else "?"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a chatty import must not spoil --json
            value = ep.load()
        return Loaded(ep.name, package, version, check(ep, value))
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
        return Loaded(ep.name, package, version, None, f"{type(exc).__name__}: "
                      f"{first_line(exc) if str(exc) else 'raised at import'}")


def hidden_by_allow_list(group: str, name: str, kind: str) -> str | None:
    """If ``ORTVIZ_PLUGINS`` hides the installed plugin ``name`` of ``group``, a sentence saying so."""
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    names = {ep.name for ep in metadata.entry_points(group=group)}
    if name in names and name not in (allowed() or set()):
        return f"{ALLOW_ENV}={raw} hides the {kind} {name}; add it to {ALLOW_ENV} or unset it"
    return None
