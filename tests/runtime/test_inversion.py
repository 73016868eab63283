"""Feature inversion's own options (issue 22): how the photo is fitted to the model's input
(``--fit``), the caricature objective and its gradient, the layer positions and the recipe
shown in ``--help``, and a sidecar that records the values actually used. Default bundle;
runs of a few iterations only."""

import json

import numpy as np
import pytest
from PIL import Image

import ortviz
from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.objective.positions import resolve_layer
from ortviz.render import modelspace
from ortviz.techniques import feature_inversion as fi

from probes import invoke, one_error_line
from support import ARTIFACTS

INV = ["invert", "--iterations", 2, "--provider", "cpu", "--threads", 1]
RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 200, 20)


def wide_photo(path, h=100, w=400):
    """A 400x100 photo: red at the left end, blue at the right end, green between."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:] = GREEN
    a[:, : w // 8] = RED
    a[:, -w // 8:] = BLUE
    Image.fromarray(a).save(path)
    return a


def has(rgb, colour) -> bool:
    """Some pixel of ``rgb`` within 40 of ``colour`` on every channel."""
    return bool((np.abs(rgb.astype(int) - colour) <= 40).all(axis=-1).any())


def test_fit_photo_crops_pads_or_squeezes_a_photo_far_from_square():
    wide_photo_array = a = np.zeros((100, 400, 3), np.uint8)
    a[:] = GREEN
    a[:, :50], a[:, -50:] = RED, BLUE
    crop = modelspace.fit_photo(wide_photo_array, (224, 224), "crop")
    pad = modelspace.fit_photo(wide_photo_array, (224, 224), "pad")
    whole = modelspace.fit_photo(wide_photo_array, (224, 224), "whole")
    assert crop.shape == pad.shape == whole.shape == (224, 224, 3)
    assert not has(crop, RED) and not has(crop, BLUE), "crop keeps the centre only"
    for img in (pad, whole):
        assert has(img[:, :20], RED) and has(img[:, -20:], BLUE), "the ends are kept"
    # pad: the photo keeps its 4:1 aspect (224x56) in the middle rows, on grey above and below
    assert (pad[:80] == 127).all() and (pad[-80:] == 127).all()
    assert has(pad[84:140, 100:120], GREEN) and not (pad[84:140] == 127).all(axis=-1).any()
    # whole: every row is the photo (no border)
    assert has(whole[:10, 100:120], GREEN) and has(whole[-10:, 100:120], GREEN)
    with pytest.raises(ValueError, match="fit must be one of crop, pad, whole"):
        modelspace.fit_photo(wide_photo_array, (224, 224), "tile")


@pytest.mark.parametrize("fit,ends_kept", [("pad", True), ("whole", True), ("crop", False)])
def test_fit_decides_what_the_network_sees_and_the_photo_written_beside(tmp_path, fit, ends_kept):
    photo = tmp_path / "wide.png"
    wide_photo(photo)
    out = tmp_path / "inv.png"
    r = invoke(*INV, "--image", photo, "--fit", fit, "-o", out)
    assert r.exit_code == 0, r.output
    seen = np.asarray(Image.open(tmp_path / "inv-photo.png").convert("RGB"))
    assert seen.shape == (224, 224, 3)
    assert has(seen, RED) == ends_kept and has(seen, BLUE) == ends_kept, f"--fit {fit}"
    meta = json.loads((tmp_path / "inv.png.json").read_text())
    assert meta["params"]["fit"] == fit and meta["photo"] == "inv-photo.png"


def test_the_default_fit_keeps_the_whole_photo(tmp_path):
    photo = tmp_path / "wide.png"
    wide_photo(photo)
    pic = ortviz.load(provider="cpu", threads=1).feature_inversion(str(photo), iterations=1)
    assert pic.meta["params"]["fit"] == "pad"
    assert has(pic.result.photo, RED) and has(pic.result.photo, BLUE)


@pytest.mark.parametrize("args,expect", [
    (["--fit", "tile"], "--fit must be one of crop, pad, whole"),
    (["--fit", ""], "--fit must not be empty"),
    (["--match", "dot"], "--match must be one of distance, caricature"),
    (["--cossim-pow", -1], "--cossim-pow must not be negative"),
    (["--cossim-pow", 17], "--cossim-pow must be at most 16"),
    (["--lr", 0], "--lr must be positive"),
    (["--lr-end", 1.5], "--lr-end must be at most 1"),
    (["--lr-end", -0.1], "--lr-end must not be negative"),
    (["--zoom", 1], "--zoom must be in [0, 1)"),
    (["--octaves", -1], "--octaves must not be negative"),
    (["--octaves", 17], "--octaves must be at most 16"),
    (["--octave-scale", 1], "--octave-scale must be greater than 1"),
])
def test_bad_inversion_options_are_one_line_and_write_nothing(tmp_path, args, expect):
    r = invoke(*INV, *args, "-o", tmp_path / "o.png")
    line = one_error_line(r)
    assert r.exit_code == 2 and expect in line, line
    assert not list(tmp_path.iterdir())


def test_the_sidecar_records_the_values_used_not_placeholders(tmp_path):
    out = tmp_path / "i.png"
    r = invoke(*INV, "-o", out)
    assert r.exit_code == 0, r.output
    params = json.loads((tmp_path / "i.png.json").read_text())["params"]
    defaults = fi.technique.defaults()
    assert defaults["octaves"] == 0  # by depth: the sidecar says how many the early layer got
    assert params == defaults | {"iterations": 2, "octaves": 3}
    assert params["lr"] > 0 and params["lr"] == defaults["lr"]


def test_octaves_by_depth_three_before_the_middle_position_four_from_it():
    """``--octaves 0`` on every layer of the default bundle and of an exported one: 3 octaves
    before feature inversion's own middle position (not the shared one), 4 from it on."""
    own = ARTIFACTS / "small_resnet_torchscript"
    assert own.exists(), f"{own} missing: run the export stage first (make test)"
    for root in (default_bundle(), own):
        layers = Bundle.open(root).layers
        names = [entry["name"] for entry in layers]
        middle = names.index(resolve_layer(layers, "middle", fi.POSITIONS))
        got = [fi.octaves_for(layers, n) for n in names]
        assert got == [3] * middle + [4] * (len(names) - middle), (root, got)
    lite0 = Bundle.open(default_bundle()).layers
    assert fi.octaves_for(lite0, "_blocks.4") == 3 and fi.octaves_for(lite0, "_blocks.8") == 4


@pytest.mark.parametrize("layer,octaves", [("early", 3), ("middle", 4)])
def test_the_default_octaves_give_the_picture_of_the_count_written(layer, octaves):
    """The run with the default (0) is the run with the count its sidecar records."""
    model = ortviz.load(provider="cpu", threads=1)
    auto = model.feature_inversion(layer=layer, iterations=2, seed=0, fit="crop")
    given = model.feature_inversion(layer=layer, iterations=2, seed=0, fit="crop", octaves=octaves)
    assert auto.meta["params"]["octaves"] == octaves and len(auto.history) == 2 * octaves
    assert np.array_equal(auto.image, given.image)
    assert given.meta["params"] == auto.meta["params"]


def _features_value(engine, layer, x, target, p):
    return fi.caricature_value(engine.features(x, layer), target, p)[0]


@pytest.mark.parametrize("layer,p,seed", [("_blocks.2", 1.0, 0), ("_blocks.5", 0.0, 1),
                                          ("_blocks.5", 2.0, 2)])
def test_caricature_gradient_matches_finite_differences_of_the_forward_graph(layer, p, seed):
    """The caricature objective's gradient (through the distance graph with a shifted target)
    against a central difference (step 1e-3) of its value computed in numpy from the forward
    graph's features, along the gradient's direction plus a random one (a random direction
    alone is nearly orthogonal to it): relative error <= 2e-3 (measured <= 2.2e-4)."""
    from ortviz.render.context import Context
    model = ortviz.load(provider="cpu", threads=1)
    rng = np.random.default_rng(seed)
    ctx = Context(model.engine, rng, 1, layer=layer)
    target = model.engine.features(ctx.noise(0.5), layer)
    x = ctx.noise(0.5)
    value, grad = fi.caricature(ctx, layer, target, p)(x)
    assert value == pytest.approx(_features_value(model.engine, layer, x, target, p), rel=1e-6)
    r = rng.standard_normal(x.shape)
    v = grad / np.linalg.norm(grad) + r / np.linalg.norm(r)
    eps = 1e-3
    fd = (_features_value(model.engine, layer, (x + eps * v).astype(np.float32), target, p)
          - _features_value(model.engine, layer, (x - eps * v).astype(np.float32), target, p)) / (2 * eps)
    analytic = float((grad.astype(np.float64) * v).sum())
    assert abs(analytic - fd) <= 2e-3 * abs(fd), f"seed={seed} {layer} p={p}: {analytic} vs fd {fd}"
    # and the photo's own features score 1 (d = 1, cosine 1), the best of its direction
    assert fi.caricature_value(target, target, p)[0] == pytest.approx(1.0, rel=1e-6)


def test_caricature_value_gradient_in_phi_against_finite_differences():
    """caricature_value's gradient in phi, float64, against central differences: 1e-6."""
    rng = np.random.default_rng(3)
    t = rng.standard_normal((1, 4, 3, 3))
    phi = t + 0.7 * rng.standard_normal(t.shape)
    for p in (0.0, 1.0, 2.5):
        _, g = fi.caricature_value(phi, t, p)
        v = rng.standard_normal(t.shape)
        h = 1e-6
        fd = (fi.caricature_value(phi + h * v, t, p)[0] - fi.caricature_value(phi - h * v, t, p)[0]) / (2 * h)
        assert float((g * v).sum()) == pytest.approx(fd, rel=1e-6), f"seed=3 p={p}"


def test_caricature_climbs_the_photos_activation_pattern():
    model = ortviz.load(provider="cpu", threads=1)
    pic = model.feature_inversion(layer="_blocks.5", match="caricature", iterations=30, seed=0)
    assert pic.status == "complete"
    assert pic.history[-1] > pic.history[0] + 0.5, f"seed=0: {pic.history[0]:.3f} -> {pic.history[-1]:.3f}"


def _help(*args) -> str:
    r = invoke(*args, "--help")
    assert r.exit_code == 0, r.output
    return " ".join(r.output.replace("│", " ").split())


def test_help_names_the_layer_each_position_resolves_to_on_the_chosen_bundle():
    lite0 = Bundle.open(default_bundle()).layers
    want = [resolve_layer(lite0, p, fi.technique.positions) for p in ("early", "middle", "late")]
    text = _help("invert")
    assert f"on efficientnet-lite0: early = {want[0]}, middle = {want[1]}, late = {want[2]}" in text, text
    assert want[0] != "_blocks.5", "early must not land where the recipe fails (issue 22)"
    own = ARTIFACTS / "small_resnet_torchscript"
    assert own.exists(), f"{own} missing: run the export stage first (make test)"
    names = [l["name"] for l in Bundle.open(own).layers]
    want = [resolve_layer(Bundle.open(own).layers, p, fi.technique.positions) for p in ("early", "middle", "late")]
    assert set(want) <= set(names)
    assert f"early = {want[0]}, middle = {want[1]}, late = {want[2]}" in _help("invert", "--model", own)
    assert "the bundle cannot be read: no bundle at /nonexistent" in _help("invert", "--model", "/nonexistent")
    # DeepDream keeps the shared positions
    assert "early = _blocks.5, middle = _blocks.10, late = _blocks.15" in _help("dream")


def test_help_states_the_default_recipe():
    text = _help("invert")
    assert fi.technique.description and " ".join(fi.technique.description.split()) in text


@pytest.mark.parametrize("param", ["pixel", "fft"])
def test_each_octave_starts_from_the_last_ones_picture(param):
    """Coarse to fine for every parameterization: the second octave's first distance continues
    from the first octave's last (measured 0.37 -> 0.36 for fft, 0.31 -> 0.29 for pixels; a
    restart from noise would be near the first octave's start, 1.2-1.5)."""
    model = ortviz.load(provider="cpu", threads=1)
    pic = model.feature_inversion(layer="_blocks.2", param=param, octaves=2, iterations=15, seed=0,
                                  fit="crop")
    h = pic.history
    assert pic.status == "complete" and len(h) == 30
    assert h[15] < 1.2 * h[14] and h[15] < 0.5 * h[0], f"seed=0 {param}: {h[0]:.3f} {h[14]:.3f} {h[15]:.3f}"
    assert h[-1] < h[15]
