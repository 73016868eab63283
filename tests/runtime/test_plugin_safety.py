"""Plugins cannot take the tool down (docs/reliability.md).

At import or declaration: hostile plugin packages are generated into a temporary folder with an
entry-points ``.dist-info`` (as pip would install them) and put on ``PYTHONPATH`` of a real
``ortviz`` process; each is skipped with one line naming it and every command still works.
At run time: a technique that returns None or the wrong shape, exits, or reports garbage stops
its run with ``stopped:`` and the last good image.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ortviz.techniques import registry
from ortviz.techniques.spec import Param, positive

from probes import one_error_line, probe, run_probe, saved, subprocess_env

HEAD = """
from ortviz.bundle.graphs import FEATURE_ENERGY
from ortviz.techniques.spec import Need, Param, Technique, positive
def _run(ctx, **kw):
    return ctx.photo_model()
def make(name, params=(), start="photo"):
    return Technique(name=name, summary="hostile", needs=(Need(FEATURE_ENERGY),), params=params,
                     start=start, default_layer="_blocks.1", run=_run)
"""

HOSTILE = {  # entry-point name: (module body, what the skip line says)
    "raises": ("raise ValueError('boom at import')", "ValueError: boom at import"),
    "exits": ("import sys\nsys.exit(3)", "SystemExit: 3"),
    "ctrl-c": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "seed-param": ("technique = make('seed-param', (Param('seed', int, 0, 'mine'),))",
                   "clashes with the common option --seed"),
    "class-param": ("technique = make('class-param', (Param('class_', int, 0, 'x'),"
                    " Param('help', int, 0, 'x')))", "clashes with the common option --help"),
    "twice": ("technique = make('twice', (Param('n', int, 1, 'a'), Param('n', int, 2, 'b')))",
              "parameter 'n' is declared twice"),
    "list-param": ("technique = make('list-param', (Param('sizes', list, [1], 'x'),))",
                   "has type 'list'; supported: int, float, str, bool"),
    "bad-default": ("technique = make('bad-default', (Param('k', int, -1, 'x', positive),))",
                    "its default -1 must be positive"),
    "check-raises": ("def bad(v):\n    raise RuntimeError('oops')\n"
                     "technique = make('check-raises', (Param('k', int, 1, 'x', bad),))",
                     "its check raised RuntimeError: oops"),
    "not-technique": ("technique = 42", "is a int, not an ortviz Technique"),
    "bad-start": ("technique = make('bad-start', start='video')", "start 'video' is not"),
    "bad-positions": ("import dataclasses\n"
                      "technique = dataclasses.replace(make('bad-positions'), positions={'early': 2})",
                      "positions {'early': 2} is not a dict of early/middle/late to fractions"),
    "deepdream": ("technique = make('deepdream')", "claimed by several packages"),
    "twin": ("technique = make('twin')", "claimed by several packages"),
}


def _dist(site: Path, package: str, entries: dict[str, str]) -> None:
    info = site / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {module}:technique" for name, module in entries.items())
    (info / "entry_points.txt").write_text(f"[ortviz.techniques]\n{lines}\n")


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    modules = {}
    for name, (body, _) in HOSTILE.items():
        module = "hostile_" + name.replace("-", "_")
        (site / f"{module}.py").write_text(HEAD + textwrap.dedent(body) + "\n")
        modules[name] = module
    (site / "chatty.py").write_text(HEAD + "print('hello from an import')\ntechnique = make('chatty')\n")
    (site / "twin_b.py").write_text(HEAD + "technique = make('twin')\n")
    _dist(site, "hostile-plugins", modules | {"chatty": "chatty"})
    _dist(site, "other-plugins", {"twin": "twin_b"})
    return site


def ortviz(site: Path, *args):
    env = subprocess_env(PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "ortviz", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_hostile_plugins_are_each_skipped_with_one_line_and_every_command_works(hostile_site):
    r = ortviz(hostile_site, "info")
    assert r.returncode == 0, r.stderr
    assert "model       efficientnet-lite0" in r.stdout and "Traceback" not in r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.startswith("warning: plugin ")]
    for name, (_, why) in HOSTILE.items():
        mine = [l for l in warnings if l.startswith(f"warning: plugin {name} (")]
        if name in ("deepdream",):
            assert len(mine) == 1 and "(hostile-plugins 0.1) skipped" in mine[0], warnings
        elif name == "twin":
            assert len(mine) == 2, warnings  # both packages' twins: nobody can tell which is meant
        else:
            assert len(mine) == 1, (name, warnings)
        assert all(why in l for l in mine), (name, why, mine)
    assert len(warnings) == len(HOSTILE) + 1, warnings
    assert len(r.stderr.splitlines()) == len(warnings), r.stderr  # nothing else was printed

    r = ortviz(hostile_site, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)  # the chatty import did not spoil the JSON
    by = {(p["name"], p["package"]): p for p in listed}
    assert by[("deepdream", "ortviz")]["error"] is None  # the built-in keeps its name
    assert by[("chatty", "hostile-plugins")]["error"] is None

    r = ortviz(hostile_site, "dream", "--help")
    assert r.returncode == 0 and "--max-side" in r.stdout, r.stderr
    r = ortviz(hostile_site, "run", "chatty", "--help")
    assert r.returncode == 0, r.stderr


def test_a_declaration_is_checked_and_its_checks_made_safe():
    t = probe()
    for bad, why in [((Param("seed", int, 0, "x"),), "--seed"),
                     ((Param("output", str, "a", "x"),), "--output"),
                     ((Param("n", int, 1, "x"), Param("n", int, 1, "y")), "declared twice"),
                     ((Param("n", complex, 1j, "x"),), "supported: int, float, str, bool"),
                     ((Param("not valid", int, 1, "x"),), "not a plain identifier")]:
        with pytest.raises((ValueError, TypeError), match=why):
            registry.check_declaration(t.__class__(**{**t.__dict__, "params": bad}))
    good = registry.check_declaration(t.__class__(**{**t.__dict__, "params": (
        Param("lr", float, 0.1, "x", positive), Param("name", str, "a", "x"))}))
    lr, name = good.params
    with pytest.raises(TypeError, match="results is not callable"):  # per-slot files: outputset
        registry.check_declaration(t.__class__(**{**t.__dict__, "results": 2}))
    assert lr.check(float("nan")) == "must be a finite number, got nan"
    assert lr.check(float("inf")) == "must be a finite number, got inf"
    assert lr.check(-1.0) == "must be positive" and lr.check(0.5) is None
    assert name.check("  ") == "must not be empty" and lr.check("x").startswith("must be float")


def _last_good_kept(r, out, why: str):
    assert r.exit_code == 1, r.output
    line = one_error_line(r)
    assert line.startswith("error: stopped: technique probe (module probes)") and why in line, line
    assert line.endswith("kept the last good image")
    pixels, meta = saved(out)
    assert meta["status"].startswith("stopped: technique probe") and why in meta["status"]
    assert meta["timing"]["iterations"] == 2 and pixels.shape == (224, 224, 3)


def _exits(ctx, x, t):
    sys.exit(3)


def _string_loss(ctx, x, t):
    ctx.report(t, "low", x)


def _flat_image(ctx, x, t):
    ctx.report(t, 1.0, x[0])


@pytest.mark.parametrize("fault,why", [
    (lambda ctx, x, t: None, "returned NoneType, not an image batch"),
    (lambda ctx, x, t: x[0], "returned an array of shape (3, 224, 224), not (1, 3, H, W)"),
    (lambda ctx, x, t: x.astype(str), "returned an array of <U"),
    (_exits, "failed: SystemExit: 3"),
    (_string_loss, "ctx.report got a loss of type str, not a number"),
    (_flat_image, "ctx.report got an array of shape (3, 224, 224)"),
], ids=["none", "wrong-shape", "strings", "sys-exit", "string-loss", "report-wrong-shape"])
def test_whatever_a_run_does_it_stops_with_the_last_good_image(tmp_path, fault, why):
    out = tmp_path / "p.png"
    _last_good_kept(run_probe(probe(fault), "-o", out), out, why)


def test_a_run_that_exits_before_any_good_image_is_one_line(tmp_path):
    r = run_probe(probe(_exits, good=0), "-o", tmp_path / "p.png")
    assert r.exit_code == 1 and "SystemExit: 3" in one_error_line(r)
    assert not list(tmp_path.iterdir())
