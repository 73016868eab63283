"""The package's shape (issue 20): no import circle, function-local imports only with a reason,
0.1's module names still importable (same module, a DeprecationWarning), and
docs/architecture.md naming every module there is and none that is not."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "ortviz"


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _type_checking(node) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The ortviz modules ``name`` imports when it is imported (not inside functions, not
    under ``if TYPE_CHECKING``), each with the packages above it."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # runs when called, not on import
            if _type_checking(node):
                continue
            if isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for part in ("body", "orelse", "finalbody", "handlers"):
                    for sub in getattr(node, part, []):
                        visit(getattr(sub, "body", [sub]) if isinstance(sub, ast.ExceptHandler) else [sub])

    visit(tree.body)
    edges = set()
    for m in found:
        if not m.startswith("ortviz"):
            continue
        parts = m.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            sub = ".".join(parts[:i])
            # a module's own packages are imported before it by the import system, not by it
            if sub in known and sub != name and not name.startswith(sub + "."):
                edges.add(sub)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_ortviz_imports_itself_through_others():
    mods = modules()
    graph = {m: top_level_imports(p, m, set(mods)) for m, p in mods.items()}
    # the parent package of each module is imported first; ortviz/__init__ itself imports only _compat
    assert graph["ortviz"] == {"ortviz._compat"}, graph["ortviz"]
    assert cycles(graph) == []


LOCAL = re.compile(r"^\s+(from \S+ import .+|import .+)$")


def test_function_local_imports_each_say_why():
    """A function-local import avoids loading something heavy or optional (onnxruntime for the
    CLI's --help and info, torch, Ray, IPython, tqdm) and says so on its line."""
    bare = []
    for m, path in modules().items():
        tree = ast.parse(path.read_text())
        lines = path.read_text().splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    line = lines[node.end_lineno - 1]
                    if "#" not in line:
                        bare.append(f"{path.relative_to(ROOT)}:{node.lineno}: {line.strip()}")
    assert not bare, "function-local imports without a reason:\n" + "\n".join(sorted(set(bare)))


def test_every_module_imports_without_a_deprecation_warning():
    """The new names are what ortviz itself uses: importing every module (the export stage's
    apart: torch) warns about no moved name."""
    code = ("import importlib, pkgutil, warnings, ortviz\n"
            "warnings.simplefilter('error', DeprecationWarning)\n"
            "for m in pkgutil.walk_packages(ortviz.__path__, 'ortviz.'):\n"
            "    if not (m.name.startswith('ortviz.export') or m.name.endswith('__main__')):\n"
            "        importlib.import_module(m.name)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


@pytest.mark.parametrize("old,new", [("ortviz.technique", "ortviz.techniques.spec"),
                                     ("ortviz.loop", "ortviz.render.loop"),
                                     ("ortviz.algebra", "ortviz.objective.algebra"),
                                     ("ortviz.objectives", "ortviz.bundle.graphs"),
                                     ("ortviz.param.fourier", "ortviz.render.param.fourier"),
                                     ("ortviz.imaging", "ortviz.render.modelspace")])
def test_an_old_module_name_is_the_new_module_with_a_deprecation_warning(old, new):
    code = (f"import sys, warnings\nwarnings.simplefilter('always')\n"
            f"with warnings.catch_warnings(record=True) as got:\n"
            f"    import {old} as a\n"
            f"import {new} as b\n"
            f"assert a is b and sys.modules[{old!r}] is b and b.__name__ == {new!r}, (a, b)\n"
            f"assert b.__spec__.name == {new!r}\n"
            f"msgs = [str(w.message) for w in got if w.category is DeprecationWarning]\n"
            f"assert any({old!r} + ' moved to ' + {new!r} in m for m in msgs), msgs\n"
            f"assert all(w.filename == '<string>' for w in got if w.category is DeprecationWarning), "
            f"[w.filename for w in got]\n"
            f"print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_name_of_a_module_that_became_a_package_still_reaches_its_attributes():
    with pytest.warns(DeprecationWarning, match="ortviz.bundle.Bundle moved to ortviz.bundle.reader.Bundle"):
        from ortviz.bundle import Bundle
    from ortviz.bundle.reader import Bundle as B
    assert Bundle is B
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from ortviz.render import modelspace  # a submodule is never shadowed by 0.1's attribute
    assert modelspace is importlib.import_module("ortviz.render.modelspace")
    with pytest.raises(ImportError):
        from ortviz.render import no_such_name  # noqa: F401


def test_recipes_option_helpers_moved_to_choices_with_a_warning():
    from ortviz.techniques import choices, recipes
    with pytest.warns(DeprecationWarning, match="recipes.param_choice moved to ortviz.techniques.choices"):
        f = recipes.param_choice
    assert f is choices.param_choice
    with pytest.raises(AttributeError):
        recipes.no_such_thing


ARCH = ROOT / "docs" / "architecture.md"


def test_the_architecture_page_names_every_module_and_only_those():
    named = set(re.findall(r"`(ortviz(?:\.\w+)+|ortviz)`", ARCH.read_text()))
    mods = set(modules())
    missing = sorted(m for m in mods if m not in named and not m.endswith("__main__"))
    stale = sorted(n for n in named if n not in mods)
    assert not missing, f"docs/architecture.md does not name: {missing}"
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


@pytest.mark.parametrize("script", sorted(p.relative_to(ROOT).as_posix() for d in ("bench", "scripts")
                                          for p in (ROOT / d).glob("*.py")))
def test_the_tools_import_names_that_exist(script):
    """bench/ and scripts/ are outside the suite's imports; a name they take from ortviz that a
    refactor moved would only fail when someone runs them (or, for the docs tables, in the last
    CI stage). Every ``from ortviz.x import y`` in them, anywhere in the file, must resolve."""
    missing = []
    for node in ast.walk(ast.parse((ROOT / script).read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ortviz" and not node.level:
            mod = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names
                        if not hasattr(mod, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "ortviz" and importlib.util.find_spec(a.name) is None:
                    missing.append(a.name)
    assert missing == [], f"{script} imports names ortviz no longer has: {missing}"
