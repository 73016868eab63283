"""DeepDream on the render loop: same seed -> same picture, any size kept (tiling), the new
--param/--transforms choices reach it, and their bad values are one-line errors. Default bundle."""

import re

import numpy as np
import pytest
from PIL import Image

from ortviz.bundle.embedded import sample
from ortviz.render import modelspace
from ortviz.render.metrics import ssim

from probes import invoke, one_error_line, saved

SMALL = dict(iterations=2, octaves=2, max_side=400)  # 266 x 400 > 224: the last octave is tiled


@pytest.mark.parametrize("transforms", ["light", "standard"])
def test_the_same_seed_gives_the_same_dream_and_another_seed_another(model, transforms):
    a = model.deepdream(seed=7, transforms=transforms, **SMALL)
    b = model.deepdream(seed=7, transforms=transforms, **SMALL)
    c = model.deepdream(seed=8, transforms=transforms, **SMALL)
    assert a.image.shape[:2] == (266, 400)  # chelsea (300 x 451) at its own aspect, not resized
    assert np.array_equal(a.image, b.image), f"{transforms}: seed 7 twice gave different images"
    assert not np.array_equal(a.image, c.image), f"{transforms}: seeds 7 and 8 gave the same image"
    assert len(a.history) == 4  # every step of both octaves' loops reported once


@pytest.mark.parametrize("param", ["fft", "maco"])
def test_a_spectral_dream_starts_at_the_photo_and_changes_it(model, param):
    """--param fft/maco --octaves 1: the first objective value is the photo's own (the
    parameterization starts exactly there), the energy rises and the picture moves away from
    the photo but keeps its structure."""
    pix = model.deepdream(seed=0, octaves=1, iterations=1, max_side=224)
    pic = model.deepdream(seed=0, param=param, octaves=1, iterations=8, max_side=224)
    assert pic.status == "complete" and pic.meta["params"]["param"] == param
    # step 1's value is measured before any step: the photo's, for every parameterization
    assert abs(pic.history[0] - pix.history[0]) <= 1e-3 * abs(pix.history[0]), (pic.history[0], pix.history[0])
    # measured: fft x1.6, maco x1.12 (its phases move slowly at the default lr 0.01)
    assert pic.history[-1] > {"fft": 1.3, "maco": 1.06}[param] * pic.history[0], pic.history
    pre = model.bundle.manifest["preprocessing"]
    rgb = np.asarray(Image.open(sample("chelsea.png")).convert("RGB"))
    src = modelspace.from_model(modelspace.to_model(rgb, pre["mean"], pre["std"], size=pic.image.shape[:2],
                                              crop=True), pre["mean"], pre["std"])  # the start
    moved = np.abs(pic.image.astype(int) - src).mean()
    print(f"{param}: moved {moved:.2f} grey levels, SSIM {ssim(pic.image, src):.3f}")
    assert moved > {"fft": 2.0, "maco": 0.5}[param], f"{param}: within {moved:.2f} grey levels of the photo"
    assert ssim(pic.image, src) > 0.5, f"{param}: the photo's structure is lost"


def test_fft_dream_through_the_cli(tmp_path):
    out = tmp_path / "d.png"
    r = invoke("dream", "--param", "fft", "--octaves", 1, "--iterations", 3, "--max-side", 96,
               "--transforms", "standard", "--threads", 2, "-o", out)
    assert r.exit_code == 0, r.output
    img, meta = saved(out)
    assert meta["status"] == "complete" and img.shape[:2] == (64, 96)
    assert (meta["params"]["param"], meta["params"]["transforms"]) == ("fft", "standard")


@pytest.mark.parametrize("args,expect", [
    (["--param", "fourier"], "--param must be one of pixel, fft, maco, natural"),
    (["--transforms", "heavy"], "--transforms must be one of none, light, standard, wide"),
    (["--param", "fft", "--octaves", 2], "--octaves 2 needs --param pixel"),
    (["--param", "maco", "--octaves", 4], "--octaves 4 needs --param pixel"),
    (["--param", ""], "--param must not be empty"),
])
def test_bad_values_of_the_new_options_are_one_line(tmp_path, args, expect):
    out = tmp_path / "o.png"
    r = invoke("dream", "--iterations", 1, "--max-side", 64, "--provider", "cpu", *args, "-o", out)
    line = one_error_line(r)
    assert r.exit_code == 2 and expect in line, line
    assert not list(tmp_path.iterdir())


def test_help_lists_the_new_options_with_their_defaults():
    r = invoke("dream", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    for option, default in (("--param", "pixel"), ("--transforms", "light"), ("--octaves", "4"),
                            ("--jitter", "16"), ("--lr", "0.01")):
        start = text.index(f"{option} <")
        # the next option's name (not a --name mentioned inside the help text)
        following = start + 1 + re.search(r"--[a-z][a-z-]* (?:-[a-z] )?<", text[start + 1:]).start()
        assert f"[default: {default}]" in text[start:following], (option, text[start:following])
