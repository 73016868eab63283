"""The command line on the embedded default: main job, inspection, and bad input."""

import json

import pytest
from PIL import Image

from probes import invoke


def test_dream_main_job_writes_image_and_sidecar(tmp_path):
    out = tmp_path / "dream.png"
    r = invoke("dream", "--iterations", 2, "--octaves", 2, "--max-side", 300, "--threads", 2,
               "--snapshot-every", 1, "-o", out)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (300, 200)
    meta = json.loads(out.with_suffix(".png.json").read_text())
    assert meta["technique"] == "deepdream" and meta["status"] == "complete"
    assert meta["layer"] == "_blocks.10" and meta["provider"] == "cpu" and len(meta["top5"]) == 5
    assert meta["params"]["octaves"] == 2 and meta["timing"]["iterations"] == 4
    assert meta["model"]["name"] == "efficientnet-lite0" and len(meta["model"]["manifest_sha256"]) == 64
    assert (tmp_path / "dream.gif").exists() and (tmp_path / "dream-sheet.png").exists()
    assert len(list((tmp_path / "dream-frames").glob("*.png"))) == meta["snapshots"]["count"]


def test_class_viz_several_targets_by_name_and_index(tmp_path):
    out = tmp_path / "cv.png"
    r = invoke("class-viz", "--class", "flamingo", "--class", 9, "--iterations", 2, "-o", out)
    assert r.exit_code == 0, r.output
    for cls in (130, 9):
        meta = json.loads((tmp_path / f"cv-{cls}.png.json").read_text())
        assert meta["target"]["class"] == cls


def test_run_generic_command_and_invert(tmp_path):
    r = invoke("run", "feature-inversion", "--iterations", 3, "--layer", "_blocks.1", "-o", tmp_path / "i.png")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "i.png.json").read_text())["technique"] == "feature-inversion"


def test_info_and_layers_default_and_json():
    r = invoke("info")
    assert r.exit_code == 0 and "efficientnet-lite0" in r.output
    r = invoke("layers", "--json")
    layers = json.loads(r.output)
    assert r.exit_code == 0 and layers[5]["name"] == "_blocks.3" and layers[5]["shape"] == [1, 40, 28, 28]
    r = invoke("info", "--json")
    assert json.loads(r.output)["classes"] == 1000


@pytest.mark.parametrize("args,expect", [
    (["dream", "--layer", "_blocks.99"], "unknown layer '_blocks.99'; did you mean"),
    (["class-viz", "--class", "flamingoo"], "unknown class 'flamingoo'; did you mean 'flamingo' (130)"),
    (["class-viz", "--class", "cat"], "ambiguous"),
    (["class-viz", "--class", "1000"], "class index 1000 is out of range (0..999)"),
    (["dream", "--iterations", "0"], "--iterations must be positive"),
    (["dream", "--lr", "-1"], "--lr must be positive"),
    (["dream", "--jitter", "-2"], "--jitter must not be negative"),
    (["dream", "--octave-scale", "1.0"], "--octave-scale must be greater than 1"),
    (["dream", "--provider", "warp"], "unknown execution provider 'warp'"),
    (["dream", "--provider", "cuda"], "not in this onnxruntime build and no plugin package provides it; available here: cpu"),
    (["dream", "--model", "/nonexistent/bundle"], "no bundle at /nonexistent/bundle"),
    (["dream", "--image", "/nonexistent.png"], "nonexistent.png"),
    (["class-viz", "--objective", "margin"], "--objective must be one of"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, expect):
    out = tmp_path / "x.png"
    short = [] if "--iterations" in args else ["--iterations", 1]  # a case may set its own
    r = invoke(*args, *short, "-o", out)
    assert r.exit_code == 2, r.output
    assert expect in r.output, r.output
    assert r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_non_image_file_is_refused(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_text("not an image")
    r = invoke("dream", "--image", bad, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "photo.png" in r.output and not (tmp_path / "o.png").exists()


def test_export_torch_in_the_runtime_environment_names_what_is_missing(tmp_path):
    r = invoke("export", "torch", "nets:small_resnet", "-o", tmp_path / "b")
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [
        "error: exporting a PyTorch model needs torch and the export environment "
        "(onnxruntime-training 1.19.2); see the docs' Getting started page, 'Environments'"]
    assert not (tmp_path / "b").exists()
