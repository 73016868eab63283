"""The module names of ortviz 0.1, kept for one minor version (removed in 0.3).

0.2 moved the flat modules into one package per stage (``docs/architecture.md``). A plugin
written against 0.1 (``from ortviz.technique import Technique``, ``from ortviz import loop``)
still imports: the old name is the new module itself (the same object, so a monkeypatch on
either name is seen by both), with a :class:`DeprecationWarning` naming the new place.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old name -> new name; a name below an old package maps by prefix (ortviz.param.fourier)
MOVED = {
    "ortviz.atomic": "ortviz._util.atomic",
    "ortviz.locking": "ortviz._util.locking",
    "ortviz.paths": "ortviz._util.paths",
    "ortviz.signals": "ortviz._util.signals",
    "ortviz.manifest": "ortviz.bundle.manifest",
    "ortviz.labels": "ortviz.bundle.labels",
    "ortviz.defaults": "ortviz.bundle.embedded",
    "ortviz.objectives": "ortviz.bundle.graphs",
    "ortviz.providers": "ortviz.engine.providers",
    "ortviz.algebra": "ortviz.objective.algebra",
    "ortviz.binding": "ortviz.objective.bind",
    "ortviz.objective_text": "ortviz.objective.text",
    "ortviz.objective_plugins": "ortviz.objective.plugins",
    "ortviz.selection": "ortviz.objective.positions",
    "ortviz.preactivation": "ortviz.objective.preactivation",
    "ortviz.diversity": "ortviz.objective.diversity",
    "ortviz.loop": "ortviz.render.loop",
    "ortviz.param": "ortviz.render.param",
    "ortviz.transforms": "ortviz.render.transforms",
    "ortviz.warp": "ortviz.render.warp",
    "ortviz.optim": "ortviz.render.optim",
    "ortviz.imaging": "ortviz.render.modelspace",
    "ortviz.metrics": "ortviz.render.metrics",
    "ortviz.transparency": "ortviz.render.transparency",
    "ortviz.stepgraph": "ortviz.render.stepgraph",
    "ortviz.technique": "ortviz.techniques.spec",
    "ortviz.plugins": "ortviz.techniques.registry",
    "ortviz.recipes": "ortviz.techniques.recipes",
    "ortviz.runner": "ortviz.run.runner",
    "ortviz.guard": "ortviz.run.guard",
    "ortviz.outputs": "ortviz.run.write",
    "ortviz.outputset": "ortviz.run.outputset",
    "ortviz.images": "ortviz.run.imagefiles",
    "ortviz.options": "ortviz.run.options",
    "ortviz.progress": "ortviz.run.progress",
}
# 0.1's modules whose name is a package now: their attributes are reached through the package
PACKAGED = {"ortviz.bundle": "ortviz.bundle.reader", "ortviz.engine": "ortviz.engine.sessions",
            "ortviz.render": "ortviz.render.context"}


def new_name(old: str) -> str | None:
    """Where a 0.1 module name lives now (None: it did not move)."""
    for prefix, new in MOVED.items():
        if old == prefix or old.startswith(prefix + "."):
            return new + old[len(prefix):]
    return None


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new} in ortviz 0.2; the old name goes in 0.3",
                  DeprecationWarning, stacklevel=3)  # the importing line (warnings skips importlib's frames)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if new_name(fullname) else None

    def create_module(self, spec):
        new = new_name(spec.name)
        _warn(spec.name, new)
        module = importlib.import_module(new)
        self._spec = module.__spec__  # the import system sets __spec__ to the old one: put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


def packaged_getattr(package: str):
    """A module ``__getattr__`` for a package that was a module in 0.1 (``ortviz.bundle.Bundle``)."""
    def __getattr__(name):
        if name.startswith("__") or importlib.util.find_spec(f"{package}.{name}") is not None:
            raise AttributeError(name)  # a submodule of the package: the import system loads it
        module = importlib.import_module(PACKAGED[package])
        if not hasattr(module, name):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        _warn(f"{package}.{name}", f"{PACKAGED[package]}.{name}")
        return getattr(module, name)
    return __getattr__


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before the path finder: it would load a second copy
