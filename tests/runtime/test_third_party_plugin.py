"""A third-party technique plugin, installed from its own distribution (runtime environment).

``tests/plugins/ortviz-saliency`` is a real package that registers the ``saliency`` technique
(SmoothGrad) through the ``ortviz.techniques`` entry-point group, as any third party would.
Install it first: ``pip install -e tests/plugins/ortviz-saliency``. Also checked here: the
``ORTVIZ_PLUGINS`` allow-list, and that a plugin that fails to import is named and skipped.
"""

import json
from importlib import metadata

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ortviz import plugins
from ortviz.cli import app
from ortviz.defaults import sample
from ortviz.imaging import crop_to_aspect

pytestmark = pytest.mark.runtime

BUILT_INS = {"class-visualization", "feature-inversion", "deepdream", "feature-visualization"}


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch):
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)


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
    assert set(listed) >= BUILT_INS | {"saliency"}
    assert all(p["error"] is None and p["summary"] for p in listed.values()), listed
    assert (listed["saliency"]["package"], listed["saliency"]["version"]) == ("ortviz-saliency", "0.1.0")
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
    monkeypatch.setenv(plugins.ALLOW_ENV, "deepdream")
    found = plugins.discover()
    assert [p.name for p in found] == ["deepdream"]
    assert found[0].technique is not None and found[0].error is None


def test_a_plugin_that_fails_to_import_is_named_and_skipped(monkeypatch):
    real = metadata.entry_points
    broken = metadata.EntryPoint(name="broken", value="no_such_module_xyz:technique",
                                 group=plugins.GROUP)

    def entry_points(**kw):
        return list(real(**kw)) + ([broken] if kw.get("group") == plugins.GROUP else [])

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    found = {p.name: p for p in plugins.discover()}
    assert found["broken"].technique is None
    assert "no_such_module_xyz" in found["broken"].error
    assert BUILT_INS <= {n for n, p in found.items() if p.technique is not None}
    assert "broken" not in plugins.techniques()

    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.stdout.splitlines() if l.startswith("broken"))
    assert "FAILED TO LOAD" in line and "no_such_module_xyz" in line
    assert any(l.startswith("deepdream") for l in result.stdout.splitlines())
