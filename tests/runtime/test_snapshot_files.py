"""Snapshots a user can read (issue 23): DeepDream's GIF holds every octave, the contact sheet
labels each frame with its iteration, and snapshots that would write over ~100 MB are announced
before the run with the estimate (runtime environment)."""

import json

import numpy as np
import pytest
from PIL import Image

import ortviz
from ortviz.run import options
from ortviz.run.imagefiles import LABEL_HEIGHT, contact_sheet
from ortviz.run.runner import RunRequest, prepare
from ortviz.techniques.registry import techniques

from probes import invoke


@pytest.fixture(scope="module")
def dream(tmp_path_factory):
    out = tmp_path_factory.mktemp("dream") / "d.png"
    r = invoke("dream", "--iterations", 4, "--octaves", 3, "--max-side", 128, "--snapshot-every", 2,
               "-o", out)
    assert r.exit_code == 0, r.output
    return out, json.loads(out.with_name("d.png.json").read_text())


def test_the_dream_gif_holds_frames_of_every_octave(dream):
    out, meta = dream
    assert meta["snapshots"]["iterations"] == [2, 4, 6, 8, 10, 12, "final"]
    gif = Image.open(out.with_name("d.gif"))
    assert gif.size == Image.open(out).size == (128, 85)
    # 6 snapshots over 3 octaves (the final frame equals the last snapshot: GIF merges them)
    assert gif.n_frames >= 6
    firsts = [np.asarray(gif.convert("RGB"))]
    gif.seek(gif.n_frames - 1)
    assert not np.array_equal(firsts[0], np.asarray(gif.convert("RGB")))  # it moves
    assert len(list(out.with_name("d-frames").iterdir())) == meta["snapshots"]["count"] == 7


def test_the_contact_sheet_labels_each_frame_with_its_iteration(dream):
    out, meta = dream
    sheet = np.asarray(Image.open(out.with_name("d-sheet.png")).convert("RGB"))
    frames = [np.asarray(Image.open(p).convert("RGB"))
              for p in sorted(out.with_name("d-frames").iterdir())]
    cols, gut = 3, 2
    ch = max(f.shape[0] for f in frames) + LABEL_HEIGHT
    cw = max(f.shape[1] for f in frames)
    assert sheet.shape[:2] == (3 * ch + 2 * gut, cols * cw + (cols - 1) * gut)
    for i, f in enumerate(frames):
        top, left = (i // cols) * (ch + gut), (i % cols) * (cw + gut)
        assert np.array_equal(sheet[top:top + f.shape[0], left:left + f.shape[1]], f)
        band = sheet[top + f.shape[0]:top + f.shape[0] + LABEL_HEIGHT, left:left + 40]
        assert (band < 100).any(), i  # dark text under each frame


def test_labels_are_drawn_only_when_given_and_must_match_the_frames():
    frames = [np.full((20, 30, 3), 200, np.uint8)] * 3
    plain = contact_sheet(frames, columns=3)
    labelled = contact_sheet(frames, columns=3, labels=[5, 10, "final"])
    assert plain.shape == (20, 3 * 30 + 4, 3)
    assert labelled.shape == (20 + LABEL_HEIGHT, 3 * 30 + 4, 3)
    assert np.array_equal(labelled[:20], plain)
    assert (labelled[20:] < 100).any()
    assert (contact_sheet(frames, columns=3, labels=[None] * 3)[20:] == 255).all()
    with pytest.raises(ValueError, match="2 labels for 3 frames"):
        contact_sheet(frames, labels=[1, 2])


def _request(technique, every, **params):
    tech = techniques()[technique]
    return RunRequest(technique=tech, params=tech.defaults() | params, snapshot_every=every,
                      targets=[])


def test_heavy_snapshots_are_announced_before_the_run_with_the_estimate():
    said = []
    prepare(_request("class-visualization", 1), warn=said.append)
    (line,) = said
    assert line.startswith("--snapshot-every 1 keeps 513 frames of 224x224: about 180 MB of "
                           "frames, GIF and contact sheet, and a slower run; "
                           "--snapshot-every 2 stays under 100 MB"), line
    said.clear()
    prepare(_request("class-visualization", 2), warn=said.append)
    prepare(_request("class-visualization", 0), warn=said.append)
    assert said == []
    prepare(_request("class-visualization", 8, size=1024), warn=said.append)
    assert "keeps 65 frames of 1024x1024: about 477 MB" in said[0]  # the canvas, not the model's
    assert options.snapshot_bytes(10, (100, 200), 3) == 7 * 100 * 200 * 10 * 3


def test_the_cli_warns_first_and_the_api_in_its_words(capsys):
    r = invoke("class-viz", "--snapshot-every", 1, "--provider", "nope")
    lines = r.output.splitlines()
    assert lines[0].startswith("warning: --snapshot-every 1 keeps 513 frames"), r.output
    assert lines[1].startswith("error: unknown execution provider 'nope'") and r.exit_code == 2
    model = ortviz.load(provider="cpu")
    model.class_visualization(130, iterations=60, snapshot_every=1, size=560, progress=False,
                              param="maco", transforms="none")
    err = capsys.readouterr().err
    assert err.startswith("warning: snapshot_every=1 keeps 61 frames of 560x560: about 134 MB"), err
