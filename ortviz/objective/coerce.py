"""What the user gave as an objective (a string, a value, a list: one per batch slot) as the
checked objective values of one bundle: the one place where that happens, once per bundle and
string (a run asks for them in its checks, its result count and its loop)."""

from __future__ import annotations

import weakref

from ortviz.objective.algebra import Objective, ObjectiveError, PerSlot
from ortviz.objective.bind import Bound
from ortviz.objective.text import parse_slots

_PARSED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # bundle -> {string: values}


def as_objectives(value, bundle) -> list[Objective]:
    """The objective value(s) for ``value``, each term checked against ``bundle`` (its layers,
    channels, positions, classes and batch); raises :class:`ObjectiveError` (one line). A
    string is parsed once per bundle: the same list comes back for the same string."""
    if isinstance(value, str):
        seen = _PARSED.setdefault(bundle, {})
        if value not in seen:
            seen[value] = _checked(parse_slots(value, bundle), bundle)
        return list(seen[value])
    if isinstance(value, Objective):
        objs = [value]
    elif isinstance(value, PerSlot):
        objs = list(value.objectives)
    elif isinstance(value, (list, tuple)) and value:
        objs = [o if isinstance(o, Objective) else as_objectives(o, bundle)[0] for o in value]
    else:
        raise ObjectiveError(f"not an objective: {value!r}")
    return _checked(objs, bundle)


def _checked(objs: list, bundle) -> list:
    batch = bundle.input["shape"][0]
    if len(objs) > batch:
        raise ObjectiveError(f"{len(objs)} objectives for a batch of {batch}: export the bundle "
                             f"with --batch {len(objs)} to run them at once, or run them one by one")
    Bound.on_bundle(bundle, objs, per_slot=len(objs) > 1)  # every term fits the bundle
    return objs
