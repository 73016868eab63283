"""A third-party technique plugin, installed from its own distribution (runtime environment).

``tests/plugins/ortviz-saliency`` is a real package that registers the ``saliency`` technique
(SmoothGrad) and ``nudge`` (a class's score climbed from the photo on the render loop,
``ortviz.render.loop.optimize``) through the ``ortviz.techniques`` entry-point group, as any third
party would.
Install it first: ``pip install -e tests/plugins/ortviz-saliency``. Also checked here: the
``ORTVIZ_PLUGINS`` allow-list, and that a plugin that fails to import is named and skipped.
"""

import json
from importlib import metadata

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import ortviz
from ortviz._util import entrypoints
from ortviz.bundle.embedded import sample
from ortviz.cli import app
from ortviz.render.modelspace import crop_to_aspect, to_model
from ortviz.techniques import registry

pytestmark = pytest.mark.runtime

BUILT_INS = {"class-visualization", "feature-inversion", "deepdream", "feature-visualization"}


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch):
    monkeypatch.delenv(registry.ALLOW_ENV, raising=False)


def _installed():
    try:
        metadata.distribution("ortviz-saliency")
    except metadata.PackageNotFoundError:
        pytest.fail("ortviz-saliency is not installed: pip install -e tests/plugins/ortviz-saliency")


def test_plugins_lists_the_third_party_technique_beside_the_built_ins():
    _installed()
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(listed) >= BUILT_INS | {"saliency", "nudge"}
    assert all(p["error"] is None and p["summary"] for p in listed.values()), listed
    for name in ("saliency", "nudge"):
        assert (listed[name]["package"], listed[name]["version"]) == ("ortviz-saliency", "0.1.0")
    for name in BUILT_INS:
        assert listed[name]["package"] == "ortviz"


def test_saliency_runs_end_to_end_through_the_cli(tmp_path):
    _installed()
    out = tmp_path / "s.png"
    result = CliRunner().invoke(app, ["run", "saliency", "--class", "285", "--iterations", "4",
                                      "--provider", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "s.png.json").read_text())
    assert (meta["technique"], meta["status"]) == ("saliency", "complete")
    assert meta["params"] == {"iterations": 4, "noise": 0.15}
    assert meta["target"]["class"] == 285 and meta["timing"]["iterations"] == 4
    assert isinstance(meta["top5"], list) and len(meta["top5"]) == 5

    with Image.open(out) as im:
        assert (im.mode, im.size) == ("RGB", (224, 224))
        img = np.asarray(im).astype(np.float64)
    with Image.open(sample()) as im:
        # the photo as the technique sees it: cropped to the model's aspect, then resized
        square = Image.fromarray(crop_to_aspect(np.asarray(im.convert("RGB")), (224, 224)))
        photo = np.asarray(square.resize((224, 224), Image.Resampling.BICUBIC))
    photo = photo.astype(np.float64)
    assert np.abs(img - photo).mean() > 20, "the result is just the photo"
    # The overlay is 0.35 * photo + 0.65 * (255, 255 * s, 0): red and blue follow from the
    # photo alone (wherever s > 0), and green gives the saliency s back.
    assert np.mean(np.abs(img[..., 0] - (0.35 * photo[..., 0] + 0.65 * 255)) <= 1) > 0.99
    assert np.mean(np.abs(img[..., 2] - 0.35 * photo[..., 2]) <= 1) > 0.99
    s = (img[..., 1] - 0.35 * photo[..., 1]) / (0.65 * 255)
    assert np.percentile(s, 99) > 0.9                  # normalized by its 99th percentile
    assert np.median(s) < 0.6                          # ... so most of the map is well below it
    assert 0.002 < np.mean(s > 0.95) < 0.05            # the hottest spots are few
    centre = np.zeros(s.shape, bool)
    centre[56:168, 56:168] = True                      # the cat's face fills the middle
    assert s[centre].mean() > s[~centre].mean() + 0.05


def test_allow_list_loads_only_the_named_plugins(monkeypatch):
    monkeypatch.setenv(registry.ALLOW_ENV, "deepdream")
    found = registry.discover()
    assert [p.name for p in found] == ["deepdream"]
    assert found[0].technique is not None and found[0].error is None


def test_a_plugin_that_fails_to_import_is_named_and_skipped(monkeypatch):
    real = metadata.entry_points
    broken = metadata.EntryPoint(name="broken", value="no_such_module_xyz:technique",
                                 group=registry.GROUP)

    def entry_points(**kw):
        return list(real(**kw)) + ([broken] if kw.get("group") == registry.GROUP else [])

    monkeypatch.setattr(entrypoints.metadata, "entry_points", entry_points)
    found = {p.name: p for p in registry.discover()}
    assert found["broken"].technique is None
    assert "no_such_module_xyz" in found["broken"].error
    assert BUILT_INS <= {n for n, p in found.items() if p.technique is not None}
    assert "broken" not in registry.techniques()

    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.stdout.splitlines() if l.startswith("broken"))
    assert "FAILED TO LOAD" in line and "no_such_module_xyz" in line
    assert any(l.startswith("deepdream") for l in result.stdout.splitlines())


def _nudge(tmp_path, monkeypatch, *args):
    """Run the plugin's nudge through the CLI, counting the loop's transform draws (the loop
    draws one per step through ``ortviz.render.transforms.sample``; the plugin never calls it)."""
    from ortviz.render import transforms
    draws = []
    real = transforms.sample

    def counted(*a, **kw):
        draws.append(a[2])  # the canvas size drawn from
        return real(*a, **kw)

    monkeypatch.setattr(transforms, "sample", counted)
    out = tmp_path / "n.png"
    result = CliRunner().invoke(app, ["run", "nudge", "--class", "130", "--provider", "cpu",
                                      "--threads", "2", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        img = np.asarray(im.convert("RGB")).astype(np.float64)
    return img, json.loads((tmp_path / "n.png.json").read_text()), draws


@pytest.mark.parametrize("param,transforms", [("pixel", "light"), ("fft", "standard")])
def test_a_third_party_technique_runs_on_the_render_loop(tmp_path, monkeypatch, param, transforms):
    """nudge: the loop's steps are the reported iterations, the --param/--transforms values
    reach it, and the target's probability rises from the photo's."""
    _installed()
    img, meta, draws = _nudge(tmp_path, monkeypatch, "--iterations", "6", "--param", param,
                              "--transforms", transforms, "--lr", "0.05")
    assert (meta["technique"], meta["status"]) == ("nudge", "complete")
    assert meta["params"] == {"iterations": 6, "param": param, "transforms": transforms, "lr": 0.05}
    assert meta["timing"]["iterations"] == 6 and draws == [(224, 224)] * 6
    model = ortviz.load(provider="cpu", threads=2)
    pre = model.bundle.manifest["preprocessing"]
    with Image.open(sample()) as im:  # the photo as the technique starts from it (ctx.photo_model)
        photo = to_model(np.asarray(im.convert("RGB")), pre["mean"], pre["std"], size=(224, 224), crop=True)
    after = to_model(img.astype(np.uint8), pre["mean"], pre["std"])

    def flamingo(x):
        z = model.engine.logits(x.astype(np.float32))[0].astype(np.float64)
        return np.exp(z[130] - z.max()) / np.exp(z - z.max()).sum()

    print(f"{param}/{transforms}: p(flamingo) {flamingo(photo):.2e} -> {flamingo(after):.2e}")
    assert flamingo(after) > 2 * flamingo(photo), (param, flamingo(photo), flamingo(after))
    assert np.abs(after - photo).mean() > 0.01, "the result is just the photo"


def test_bad_loop_options_of_a_third_party_technique_are_one_line(tmp_path):
    _installed()
    result = CliRunner().invoke(app, ["run", "nudge", "--param", "wavelet", "-o", str(tmp_path / "x.png")])
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert result.exit_code == 2 and lines == ["error: --param must be one of pixel, fft, maco, natural"], result.output
    assert not list(tmp_path.iterdir())
