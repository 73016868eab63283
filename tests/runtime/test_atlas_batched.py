"""The atlas on a bundle exported with --batch 2 (written by the export stage): channels and
classes share runs, a picture per batch slot, and each slot's picture is its own unit's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atlas_support import atlas, channel_technique, load
from PIL import Image

from support import ARTIFACTS

pytestmark = pytest.mark.runtime

BATCHED = ARTIFACTS / "small_resnet_batch2"


def test_channels_and_classes_share_batched_runs(tmp_path):
    assert BATCHED.exists(), f"{BATCHED} missing: run the export stage first (make test)"
    channel_technique()
    site = tmp_path / "site"
    args = ["-o", site, "--model", BATCHED, "--channels", "3", "--classes", "3", "--iterations", "2",
            "--threads", "1", "--examples", "1", "--no-dreams", "--no-inversions"]
    result = atlas(*args)
    assert result.exit_code == 0, result.output
    a = load(site)
    layers = [l["name"] for l in json.loads((BATCHED / "manifest.json").read_text())["layers"]]
    assert len(a["channels"]) == 3 * len(layers) and len(a["classes"]) == 3
    # every picture finished: complete, or blank where a ReLU channel of this small network is
    # dead at the start (no gradient in any iteration: issue 21 wants it reported, not complete)
    assert a["counts"]["complete"] + a["counts"].get("blank", 0) == a["counts"]["units"], a["failures"]
    assert a["counts"]["complete"] >= a["counts"]["units"] - 2, a["counts"]
    # jobs of two units: the progress names the first and counts the other
    shared = [l for l in result.output.splitlines() if l.startswith("[") and "(+1)" in l]
    assert len(shared) == (3 * len(layers)) // 2 + 1, result.output
    for e in a["channels"] + a["classes"]:
        meta = json.loads((site / e["sidecar"]).read_text())
        assert meta["status"] == "complete" or (meta["status"].startswith("blank: ") and
                                                e["status"] == "blank"), meta["status"]
        assert meta["atlas"]["key"] == e["key"]
        if "objective" in e:
            assert meta["atlas"]["objective"] == e["objective"]
        else:
            assert meta["target"]["class"] == e["class"]
    first, second = (np.asarray(Image.open(site / c["image"]).convert("RGB")) for c in a["classes"][:2])
    assert not np.array_equal(first, second), "two slots of one run gave the same picture"
    again = atlas(*args)
    assert again.exit_code == 0 and f"0 rendered, {a['counts']['units']} already there" in again.output
