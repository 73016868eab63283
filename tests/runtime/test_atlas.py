"""``ortviz atlas``: the plan, the record, resume by key, executors giving the same pictures,
interruption leaving nothing partial, dataset examples, and bad input in one line.

Runs on the default bundle with a tiny atlas (see atlas_support.SMALL: 14 pictures of 2
iterations each). The channel pictures come from the installed feature-visualization technique,
or from the stand-in described in atlas_support where it is not installed yet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from atlas_support import LAYERS, SMALL, UNITS, atlas, channel_technique, copy_site, load, plugin_path, small_site
from PIL import Image

from ortviz.api import load as load_model
from ortviz.atlas.examples import photo_input
from ortviz.atlas.plan import select_channels, select_classes
from ortviz.bundle.embedded import models_dir
from ortviz.run.imagefiles import load_image

pytestmark = pytest.mark.runtime


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def entries(a: dict) -> list[dict]:
    return a["channels"] + a["classes"] + a["photo_units"]


def test_selections_of_channels_and_classes():
    labels = [f"c{i}" for i in range(1000)]
    assert select_classes("4", labels) == [125, 375, 625, 875]   # the middle of 4 equal stretches
    assert select_classes("all", labels) == list(range(1000))
    assert select_classes("c7,3-4", labels) == [3, 4, 7]
    assert select_classes("0", labels) == []
    assert select_channels("3", 80) == [0, 1, 2]
    assert select_channels("0-2,5", 80) == [0, 1, 2, 5]
    assert select_channels("500", 80) == list(range(80))       # "the first N", at most all


def test_small_atlas_records_every_picture_complete_with_its_key():
    site, bundle = small_site(), load_model(threads=1).bundle
    a = load(site)
    assert a["counts"] == {"units": UNITS, "complete": UNITS, "failed": 0}, a["failures"]
    table = {l["name"]: l for l in bundle.layers}
    assert [l["name"] for l in a["layers"]] == LAYERS
    for layer in a["layers"]:
        assert layer["channels"] == table[layer["name"]]["shape"][1]
        assert layer["rendered"] == [0, 1] and (site / layer["page"]).is_file()
        assert layer["thumbnail"] == f"img/channels/{layer['name']}/0.png"
    assert [c["class"] for c in a["classes"]] == [250, 750]     # a spread of 2 over 1000 labels
    assert sorted((u["kind"], u["layer"], u["photo"]) for u in a["photo_units"]) == sorted(
        (k, l, p) for k in ("dream", "inversion") for l in LAYERS for p in ("chelsea.png", "coffee.png"))
    keys = [e["key"] for e in entries(a)]
    assert len(set(keys)) == len(keys)
    for e in entries(a):
        meta = json.loads((site / e["sidecar"]).read_text())
        assert meta["status"] == "complete" and meta["atlas"]["key"] == e["key"]
        assert meta["seed"] == 0 and len(meta["top5"]) == 5 and meta["top5"] == e["top5"]
        assert meta["params"]["iterations"] == 2, e["unit"]
        assert pixels(site / e["image"]).shape[2] == 3
    for c in a["channels"]:
        meta = json.loads((site / c["sidecar"]).read_text())
        assert meta["technique"] == "feature-visualization"
        assert meta["params"]["objective"] == f"{c['layer']}:{c['channel']}"
        assert (site / c["page"]).is_file()
    for c in a["classes"]:
        meta = json.loads((site / c["sidecar"]).read_text())
        assert meta["technique"] == "class-visualization" and meta["target"]["class"] == c["class"]
    # the objective reaches the technique: two channels of a layer give two pictures
    first, second = (site / f"img/channels/{LAYERS[0]}/{n}.png" for n in (0, 1))
    assert not np.array_equal(pixels(first), pixels(second))


def test_rerun_renders_nothing_new_and_a_changed_recipe_redoes_only_its_units(tmp_path):
    site = copy_site(tmp_path / "site")
    before = {p: p.read_bytes() for p in (site / "img").rglob("*.png")}
    result = atlas("-o", site, *SMALL)
    assert result.exit_code == 0, result.output
    assert f"0 rendered, {UNITS} already there" in result.output
    assert {p: p.read_bytes() for p in (site / "img").rglob("*.png")} == before

    old = load(site)
    result = atlas("-o", site, *SMALL, "--set", "class-visualization.lr=0.2")
    assert result.exit_code == 0, result.output
    assert f"2 rendered, {UNITS - 2} already there" in result.output
    new = load(site)
    for was, now in zip(entries(old), entries(new)):
        assert (was["key"] == now["key"]) == (was["unit"].split()[0] != "class"), was["unit"]
    for c in new["classes"]:
        assert json.loads((site / c["sidecar"]).read_text())["params"]["lr"] == 0.2

    result = atlas("-o", site, *SMALL, "--set", "class-visualization.lr=0.2", "--force")
    assert result.exit_code == 0, result.output
    assert f"{UNITS} rendered, 0 already there" in result.output


def _same_pictures(a: Path, b: Path) -> None:
    ra, rb = load(a), load(b)
    assert rb["counts"] == ra["counts"]
    for ea, eb in zip(entries(ra), entries(rb)):
        assert (ea["unit"], ea["key"]) == (eb["unit"], eb["key"])
        assert np.array_equal(pixels(a / ea["image"]), pixels(b / eb["image"])), ea["unit"]


def test_local_processes_give_the_same_pictures_as_this_process(tmp_path):
    site = tmp_path / "site"
    result = atlas("-o", site, *SMALL, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "2 local processes, 1 thread(s) each" in result.output
    _same_pictures(small_site(), site)


def test_ray_tasks_give_the_same_pictures_as_this_process(tmp_path, monkeypatch, capfd):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: pip install -e '.[ray]' (the atlas's Ray executor)")
    # Ray's workers inherit the environment, not sys.path: the stand-in travels by PYTHONPATH
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [plugin_path(),
                                                                  os.environ.get("PYTHONPATH")])))
    site = tmp_path / "site"
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # Ray's default: token auth, and its note
    result = atlas("-o", site, *SMALL, "--executor", "ray")
    assert result.exit_code == 0, result.output
    _same_pictures(small_site(), site)
    # issue 23: a clean run prints ortviz's lines, not Ray's note on its token authentication
    printed = capfd.readouterr()
    assert "Token authentication" not in printed.out + printed.err + result.output


def test_dataset_examples_rank_the_photos_by_mean_channel_activation():
    site, model = small_site(), load_model(threads=1)
    photos = {p: photo_input(model, load_image(models_dir() / "samples" / p))
              for p in ("chelsea.png", "coffee.png")}
    for c in load(site)["channels"]:
        means = {p: float(model.engine.features(x, c["layer"])[0, c["channel"]].mean())
                 for p, x in photos.items()}
        ranked = sorted(means, key=lambda p: -means[p])
        assert [x["photo"] for x in c["examples"]] == ranked, c["unit"]
        for x in c["examples"]:
            assert x["mean_activation"] == pytest.approx(means[x["photo"]], rel=1e-5, abs=1e-6)
            assert pixels(site / x["image"]).shape[2] == 3


def _one_line_error(result, *words):
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("args, words", [
    (["--layers", "_blocks.99"], ["unknown layer '_blocks.99'"]),
    (["--layers", "_blocks.5", "--channels", "0-80"], ["channel 80 does not exist"]),
    (["--classes", "no-such-class"], ["no-such-class"]),
    (["--set", "nonsense=1"], ["no technique of this atlas has a parameter 'nonsense'"]),
    (["--set", "class-visualization.lr=-1"], ["class-visualization", "--lr"]),
    (["--executor", "spark"], ["--executor 'spark'"]),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, words):
    channel_technique()
    out = tmp_path / "site"
    _one_line_error(atlas("-o", out, *SMALL[:-4], *args), *words)
    assert not out.exists()


def test_missing_channel_technique_is_named_at_plan_time(tmp_path, monkeypatch):
    monkeypatch.setenv("ORTVIZ_PLUGINS", "class-visualization,deepdream,feature-inversion")
    out = tmp_path / "site"
    _one_line_error(atlas("-o", out, *SMALL), "this atlas needs the feature-visualization technique")
    assert not out.exists()
    monkeypatch.delenv("ORTVIZ_PLUGINS")


def test_a_directory_that_is_not_an_atlas_is_refused(tmp_path):
    channel_technique()
    (tmp_path / "notes.txt").write_text("mine")
    _one_line_error(atlas("-o", tmp_path, *SMALL), "holds no atlas")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_run_keeps_whole_pictures_and_resumes(tmp_path, workers):
    channel_technique()
    site = tmp_path / "site"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [plugin_path(),
                                                                   os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "ortviz", "atlas", "-o", str(site), *SMALL,
                             "--workers", str(workers)], stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("[2/"):
            proc.send_signal(signal.SIGINT)
            break
    seen += proc.stderr.readlines()
    assert proc.wait(timeout=120) == 130, "".join(seen)
    assert not [p for p in site.rglob("*") if p.name.endswith(".tmp")]
    a = load(site)
    done = [e for e in entries(a) if e["status"] == "complete"]
    assert 2 <= len(done) < UNITS, "".join(seen)
    on_disk = sorted(str(p.relative_to(site)) for p in (site / "img").rglob("*.png"))
    assert on_disk == sorted(e["image"] for e in done)   # no picture without its complete sidecar
    assert (site / "index.html").read_text().rstrip().endswith("</html>")
    result = atlas("-o", site, *SMALL)
    assert result.exit_code == 0, result.output
    assert f"{UNITS - len(done)} rendered, {len(done)} already there" in result.output
