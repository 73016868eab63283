"""``ortviz atlas`` says up front what it queues, and its ETA weighs each picture by its work
(issue 23: 5,846 pictures queued with no word of what they are, a first ETA far too low)."""

import importlib
import io
import re
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from ortviz.atlas import progress as atlas_progress
from ortviz.atlas.plan import Spec, make_plan, photo_files
from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.cli import app
from ortviz.run.imagefiles import load_image

build_mod = importlib.import_module("ortviz.atlas.build")  # ortviz.atlas.build is also a function


def _unit(kind, ident, **params):
    return SimpleNamespace(kind=kind, id=ident, params=params)


def test_the_eta_weighs_each_picture_by_its_work(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(atlas_progress.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    cheap, dear = _unit("channel", "channel a:0"), _unit("class", "class 1")
    p = atlas_progress.Progress(2, 0, out, weights={cheap.id: 1.0, dear.id: 9.0})
    p.start("this process", {"channels": 1, "classes": 1})
    now[0] = 2.0
    p.update([cheap], None)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("atlas: 2 pictures (1 channels, 1 classes), 0 already rendered, 2 to "
                        "render on this process; an ETA follows the first pictures")
    assert lines[1] == "[1/2] channel a:0: ok; 2s elapsed, ETA 18s"  # 9 units of work at 2 s each
    now[0] = 20.0
    p.update([dear], None)
    assert out.getvalue().splitlines()[2].endswith("20s elapsed, ETA 0s")


def test_work_grows_with_depth_iterations_and_a_dreams_tiles():
    model = (224, 224)
    ch = _unit("channel", "c", iterations=256)
    assert atlas_progress.work(ch, 0.1, model) < atlas_progress.work(ch, 0.9, model)
    cls = _unit("class", "k", iterations=512, crops=1)
    assert atlas_progress.work(cls, 0.1, model) == 512 * 1.2  # all of the network
    dream = _unit("dream", "d", iterations=20, octaves=4, octave_scale=1.4, max_side=512,
                  param="pixel")
    one = _unit("dream", "d", iterations=20, octaves=1, max_side=512, param="pixel")
    big = atlas_progress.work(dream, 0.5, model, (512, 768))
    assert big > atlas_progress.work(one, 0.5, model, (512, 768)) > 20 * 0.7 * 3  # 3.5 tiles
    assert atlas_progress.work(one, 0.5, model, (100, 150)) == 20 * 0.7  # one resized view


def test_on_the_default_atlas_the_first_layers_are_a_small_share_of_the_work():
    bundle = Bundle.open(default_bundle())
    spec = Spec()
    spec.photos = photo_files(None)
    units = make_plan(bundle, spec)
    photos = {p.name: load_image(p).shape[:2] for p in spec.photos}
    weights = build_mod._weights(units, bundle, photos)
    first = [u for u in units if u.kind == "channel"][:200]  # what a first ETA had seen
    share = sum(weights[u.id] for u in first) / sum(weights.values())
    assert share < 0.5 * len(first) / len(units), share  # counting pictures overstated it
    assert build_mod._kinds(units) == {"channels": 5712, "classes": 50, "dreams": 42,
                                       "inversions": 42}


def test_the_cli_says_what_it_queues_before_the_first_picture(tmp_path):
    r = CliRunner().invoke(app, ["atlas", "-o", str(tmp_path / "site"), "--layers", "_blocks.2",
                                 "--channels", "2", "--classes", "1", "--no-dreams",
                                 "--no-inversions", "--examples", "0", "--iterations", "1"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    first = next(k for k, l in enumerate(lines) if l.startswith("atlas: "))
    assert lines[first].startswith("atlas: 3 pictures (2 channels, 1 classes), 0 already "
                                   "rendered, 3 to render on this process")
    done = [k for k, l in enumerate(lines) if re.match(r"\[\d/3\] ", l)]
    assert done and first < done[0] and "ETA" in lines[done[0]]


def test_work_counts_an_inversions_octaves_and_a_diversity_sets_share():
    model = (224, 224)
    three = _unit("inversion", "i", iterations=100, octaves=3)
    one = _unit("inversion", "i", iterations=100, octaves=1)
    assert atlas_progress.work(three, 0.3, model) == 3 * atlas_progress.work(one, 0.3, model)
    ch = _unit("channel", "c", iterations=256)
    div = _unit("diversity", "d", iterations=256)
    assert atlas_progress.work(div, 0.5, model) == pytest.approx(1.4 * atlas_progress.work(ch, 0.5, model))


def test_the_plans_inversions_carry_the_octaves_their_layer_gets():
    """Feature inversion's default ``octaves`` (0: by depth) is resolved per layer in the plan, so
    the ETA weighs what the run does: 3 octaves before its middle position, 4 from it on; a
    DeepDream unit's empty objective becomes the layer's, as its run resolves it."""
    bundle = Bundle.open(default_bundle())
    spec = Spec(layers=["_blocks.4", "_blocks.8"], channels="0", classes="0", dreams=True,
                inversions=True)
    spec.photos = photo_files(None)[:1]
    units = make_plan(bundle, spec)
    octaves = {u.layer: u.params["octaves"] for u in units if u.kind == "inversion"}
    assert octaves == {"_blocks.4": 3, "_blocks.8": 4}
    assert all(atlas_progress.work(u, 0.5, (224, 224)) > 0 for u in units)
    assert {u.layer: u.params["objective"] for u in units if u.kind == "dream"} == \
        {"_blocks.4": "_blocks.4", "_blocks.8": "_blocks.8"}
