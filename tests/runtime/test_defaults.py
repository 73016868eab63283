"""Defaults that come from the bundle (layer by position, class by rule), class labels, the
runner's graph check, third-party commands and the Python API's inputs (runtime environment)."""

import json

import numpy as np
import pytest
from PIL import Image

import ortviz
from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.graphs import CLASS_SCORE, FEATURE_ENERGY
from ortviz.bundle.reader import Bundle
from ortviz.errors import UsageError
from ortviz.objective.positions import default_class, resolve_layer
from ortviz.run import runner as runner_mod
from ortviz.techniques.registry import Loaded
from ortviz.techniques.spec import Need, Param, Technique

from probes import invoke
from support import ARTIFACTS

OWN = ARTIFACTS / "small_resnet_torchscript"  # a user's own bundle: 6 layers, labels "class i"


def test_positions_resolve_in_any_layer_table():
    table = [{"name": n} for n in ["stem", "pool", "layer1", "layer2", "layer3", "gap"]]
    assert [resolve_layer(table, p) for p in ("early", "middle", "late")] == ["layer1", "layer2", "layer3"]
    lite0 = Bundle.open(default_bundle()).layers
    assert [resolve_layer(lite0, p) for p in ("early", "middle", "late")] == \
        ["_blocks.5", "_blocks.10", "_blocks.15"]
    assert resolve_layer(table, "gap") == "gap"
    with pytest.raises(UsageError, match=r"unknown layer 'layr1'; did you mean layer1"):
        resolve_layer(table, "layr1")


def test_default_class_is_flamingo_where_there_is_one_else_class_zero():
    assert default_class(Bundle.open(default_bundle()).labels) == 130
    assert default_class(["class 0", "class 1"]) == 0


@pytest.mark.parametrize("cmd,args,layer,target", [
    ("dream", ["--octaves", 1, "--max-side", 64], "layer2", None),
    ("invert", [], "layer1", None),
    ("class-viz", ["--octaves", 1], None, 0),
])
def test_builtins_run_on_a_users_own_bundle_with_no_layer_or_class(tmp_path, cmd, args, layer, target):
    assert OWN.exists(), f"{OWN} missing: run the export stage first (make test)"
    out = tmp_path / "o.png"
    r = invoke(cmd, "--model", OWN, "--iterations", 2, *args, "-o", out)
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".png.json").read_text())
    assert meta["layer"] == layer
    assert (meta["target"] or {}).get("class") == target


def test_labels_lists_searches_and_tells_shared_names_apart():
    r = invoke("labels", "--search", "crane")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["134 (crane) next to bittern and limpkin",
                                     "517 (crane) next to cradle and crash helmet"]
    r = invoke("labels", "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)) == 1000
    r = invoke("labels", OWN, "--search", "zebra")
    assert r.exit_code == 2 and r.output.strip() == "error: no class name contains 'zebra'"
    r = invoke("class-viz", "--class", "crane", "--iterations", 1)
    assert r.exit_code == 2
    assert "134 (crane) next to bittern and limpkin" in r.output and "517" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_technique_reading_the_logits_and_a_layer_passes_the_check(tmp_path):
    def run(ctx, iterations):
        x = ctx.noise()
        for t in range(iterations):
            a = ctx.grad(CLASS_SCORE.name, "logits", x, class_weights=ctx.one_hot())
            b = ctx.grad(FEATURE_ENERGY.name, ctx.layer, x)
            x = ctx.clip(x + 0.01 * np.sign(a.grad + b.grad))
            ctx.report(t, a.loss + b.loss, x)
        return x

    both = Technique("both", "logits and a layer", (Need(CLASS_SCORE, on="logits"),
                                                    Need(FEATURE_ENERGY, on="layers")),
                     (Param("iterations", int, 2, "Iterations."),), run=run)
    req = runner_mod.RunRequest(technique=both, params={"iterations": 2}, output=tmp_path / "b.png")
    assert runner_mod.run_request(req, echo=lambda m: None, err=lambda m: None) == 0
    meta = json.loads((tmp_path / "b.png.json").read_text())
    assert meta["layer"] == "_blocks.10" and meta["target"]["class"] == 130


def test_third_party_techniques_are_top_level_commands_unless_the_name_is_taken(monkeypatch):
    r = invoke("saliency", "--help")  # the example plugin, installed in this environment
    assert r.exit_code == 0 and "SmoothGrad" in r.output
    import typer

    from ortviz.cli import techniques as tcli
    fake = Technique("info", "clashes with ortviz info", (Need(CLASS_SCORE, on="logits"),))
    monkeypatch.setattr(tcli, "discover", lambda: [Loaded("info", "clash", "1", fake)])
    probe = typer.Typer()
    probe.command("info")(lambda: None)
    tcli.add_to(probe)
    names = [c.name for c in probe.registered_commands]
    assert names.count("info") == 1  # kept as `ortviz run info` only


def test_api_takes_pil_images_and_class_lists_and_records_threads():
    model = ortviz.load(threads=1)
    with Image.open(sample()) as im:
        assert model.classify(im)[0]["class"] == 285
        assert model.classify(im.convert("L"))[0]["class"] in range(1000)  # grey: converted
    pics = model.class_visualization(["goldfish", 963], iterations=1, octaves=1)
    assert [p.meta["target"]["class"] for p in pics] == [1, 963]
    assert all(p.meta["threads"] == 1 for p in pics)
    assert model.class_visualization(iterations=1, octaves=1).meta["target"]["class"] == 130
    with Image.open(sample()) as im:
        pic = model.deepdream(im, iterations=1, octaves=1, max_side=64)
    assert pic.status == "complete" and pic.image.shape[2] == 3
    with pytest.raises(TypeError, match="PIL image"):
        model.classify(42)


def test_inversion_writes_the_photo_it_saw_beside_it_and_a_later_run_removes_it(tmp_path):
    out = tmp_path / "inv.png"
    photo = tmp_path / "wide.png"
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 200  # the centre third: what a square crop keeps
    Image.fromarray(wide).save(photo)
    r = invoke("invert", "--image", photo, "--iterations", 1, "--fit", "crop", "-o", out)
    assert r.exit_code == 0, r.output
    meta = json.loads(out.with_suffix(".png.json").read_text())
    assert meta["photo"] == "inv-photo.png"
    with Image.open(tmp_path / "inv-photo.png") as im:
        seen = np.asarray(im)
    assert seen.shape == (224, 224, 3) and seen.min() >= 190, "not the centre crop of the photo"
    r = invoke("dream", "--iterations", 1, "--octaves", 1, "--max-side", 64, "-o", out)
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "inv-photo.png").exists(), "a stale photo describes another picture"


@pytest.mark.parametrize("cmd,args,lr", [
    ("class-viz", [], 0.05),                       # fft: Adam 0.05
    ("class-viz", ["--param", "pixel"], 0.1),      # pixel: normalized ascent 0.1
    ("class-viz", ["--lr", 0.2], 0.2),
    ("feature-viz", ["--param", "maco"], 0.05),
    ("feature-viz", ["--param", "pixel", "--lr", 0.3], 0.3),
])
def test_the_sidecar_records_the_step_size_used_not_the_automatic_zero(tmp_path, cmd, args, lr):
    out = tmp_path / "o.png"
    r = invoke(cmd, "--iterations", 1, *args, "-o", out)
    assert r.exit_code == 0, r.output
    assert json.loads(out.with_suffix(".png.json").read_text())["params"]["lr"] == lr
    pic = ortviz.load(provider="cpu", threads=1).run(
        {"class-viz": "class-visualization", "feature-viz": "feature-visualization"}[cmd],
        iterations=1, **{a[2:].replace("-", "_"): (float(b) if a == "--lr" else b)
                         for a, b in zip(args[::2], args[1::2])})
    assert pic.meta["params"]["lr"] == lr
