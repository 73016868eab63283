"""``ortviz atlas --negative --diversity K``: each channel's negative picture and diversity set
on its page and in atlas.json, resumed by key; a dead unit's picture recorded ``blank`` with its
message (not a failure, not redone); the default atlas plans neither; bad values in one line."""

from __future__ import annotations

import json

import pytest
from atlas_support import atlas, load
from PIL import Image
from test_units import dead_channels

import ortviz
from ortviz.atlas.build import jobs_of
from ortviz.atlas.plan import Spec, make_plan

pytestmark = pytest.mark.runtime

ONE = ["--classes", "0", "--no-dreams", "--no-inversions", "--examples", "0", "--threads", "1",
       "--iterations", "3"]


def test_default_atlas_plans_no_negative_or_diversity():
    bundle = ortviz.load(provider="cpu", threads=1).bundle
    units = make_plan(bundle, Spec(layers=["_blocks.5"], channels="2", classes="0", dreams=False,
                                   inversions=False))
    assert [u.kind for u in units] == ["channel", "channel"]
    units = make_plan(bundle, Spec(layers=["_blocks.5"], channels="2", classes="0", dreams=False,
                                   inversions=False, negative=True, diversity=3))
    assert [u.kind for u in units] == ["channel", "negative"] + ["diversity"] * 3 + \
        ["channel", "negative"] + ["diversity"] * 3
    jobs = jobs_of(units, 1, {})
    sets = [j for j in jobs if j.units[0].kind == "diversity"]
    assert [len(j.units) for j in sets] == [3, 3]   # one run per set
    assert all(u.params["negative"] for u in units if u.kind == "negative")
    assert len({u.key for u in units if u.key}) == len([u for u in units if u.key])


def test_negative_and_diversity_on_the_channel_page(tmp_path):
    site = tmp_path / "site"
    args = ["-o", site, "--layers", "_blocks.10", "--channels", "1", "--negative", "--diversity", "2",
            "--set", "transparency=true", *ONE]
    r = atlas(*args)
    assert r.exit_code == 0, r.output
    a = load(site)
    assert a["counts"] == {"units": 4, "complete": 4, "failed": 0}
    c = a["channels"][0]
    assert c["negative"]["status"] == "complete" and (site / c["negative"]["image"]).is_file()
    meta = json.loads((site / c["negative"]["sidecar"]).read_text())
    assert meta["params"]["negative"] is True and meta["atlas"]["kind"] == "negative"
    assert [d["variant"] for d in c["diversity"]] == [0, 1]
    for d in c["diversity"]:
        assert (site / d["image"]).is_file()
        assert len(d["diversity"]["gram_cosine_similarity"]) == 2
    page = (site / c["page"]).read_text()
    assert "<h2>Negative</h2>" in page and "<h2>Diversity</h2>" in page
    assert "Mean pairwise cosine similarity" in page
    for d in [c["negative"]] + c["diversity"]:
        assert d["image"].split("/", 1)[1] in page
    for d in [c, c["negative"]] + c["diversity"]:   # the transparency map, as --set asked
        assert Image.open(site / d["image"]).mode == "RGBA"
    r = atlas(*args)
    assert r.exit_code == 0 and "0 rendered, 4 already there" in r.output, r.output


def test_a_dead_unit_is_recorded_blank_and_not_redone(tmp_path):
    c = dead_channels(ortviz.load(provider="cpu", threads=1), 1)[0]
    site = tmp_path / "site"
    args = ["-o", site, "--layers", "_swish_1", "--channels", f"{c}-{c}", "--set", "warm_up=false", *ONE]
    r = atlas(*args)
    assert r.exit_code == 0, r.output
    a = load(site)
    e = a["channels"][0]
    assert e["status"] == "blank" and e["message"].startswith(f"blank: _swish_1:{c} gave no gradient")
    assert a["counts"] == {"units": 1, "complete": 0, "failed": 0, "blank": 1}
    assert a["layers"][0]["blank"] == [c] and a["layers"][0]["rendered"] == []
    layer_page = (site / a["layers"][0]["page"]).read_text()
    assert "· blank" in layer_page and "no gradient" in layer_page
    assert "gave no gradient" in (site / e["page"]).read_text()
    r = atlas(*args)
    assert r.exit_code == 0 and "0 rendered, 1 already there" in r.output, r.output


@pytest.mark.parametrize("args,says", [
    (["--diversity", "1"], "--diversity 1: give 2 to 16 pictures per channel"),
    (["--diversity", "17"], "--diversity 17: give 2 to 16"),
    (["--diversity", "-2"], "--diversity -2: give 2 to 16"),
])
def test_bad_atlas_unit_options_are_one_line(tmp_path, args, says):
    r = atlas("-o", tmp_path / "site", "--layers", "_blocks.10", "--channels", "1", *args, *ONE)
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "site").exists()
