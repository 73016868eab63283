"""Techniques on a bundle exported with --batch 2 (written by the export stage)."""

import json

import numpy as np
from typer.testing import CliRunner

import ortviz
from ortviz.cli import app

from support import ARTIFACTS

BATCHED = ARTIFACTS / "small_resnet_batch2"
SINGLE = ARTIFACTS / "small_resnet_torchscript"
runner = CliRunner()


def test_class_targets_share_batched_runs(tmp_path):
    assert BATCHED.exists(), f"{BATCHED} missing: run the export stage first (make test)"
    out = tmp_path / "cv.png"
    r = runner.invoke(app, ["class-viz", "--model", str(BATCHED), "-c", "3", "-c", "7", "-c", "1",
                            "--iterations", "3", "--provider", "cpu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    for cls in (3, 7, 1):
        meta = json.loads((tmp_path / f"cv-{cls}.png.json").read_text())
        assert meta["target"]["class"] == cls and meta["status"] == "complete"
        assert len(meta["top5"]) == 5
    a = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "cv-3.png"))
    b = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "cv-7.png"))
    assert not np.array_equal(a, b), "two targets of one batch gave the same picture"


def test_a_batch_slot_matches_the_same_run_alone():
    """Slot 0 of a batched run follows the single-image run with the same seed: the images
    of a batch do not influence each other (per-image normalized steps, blur, clip)."""
    seed = 4
    batched = ortviz.load(BATCHED, provider="cpu").run("class-visualization", target=3, seed=seed,
                                                       iterations=4)
    single = ortviz.load(SINGLE, provider="cpu").run("class-visualization", target=3, seed=seed,
                                                     iterations=4)
    diff = np.abs(batched.image.astype(int) - single.image.astype(int))
    assert diff.max() <= 2, f"seed={seed}: batched slot differs from the single run by {diff.max()}"


def test_photo_techniques_run_on_a_batched_bundle(tmp_path):
    for cmd in (["dream", "--iterations", "2", "--octaves", "2", "--max-side", "64"],
                ["invert", "--iterations", "2"]):
        out = tmp_path / f"{cmd[0]}.png"
        r = runner.invoke(app, [*cmd, "--model", str(BATCHED), "--layer", "layer1", "-o", str(out)])
        assert r.exit_code == 0, r.output
        assert json.loads(out.with_suffix(".png.json").read_text())["status"] == "complete"
