"""Photos of odd sizes (README, "Reliability"): too small or too thin for any model is refused in
one line naming the size; a phone's 50-200 MP JPEG is read reduced by Pillow's ``draft`` up to a
stated bound. Test images are made on the fly; default bundle, one iteration at most."""

import struct

import numpy as np
import pytest
from PIL import Image

import ortviz
from ortviz.errors import UsageError
from ortviz.run import imagefiles

from probes import invoke, one_error_line

DREAM = ["dream", "--iterations", 1, "--octaves", 1, "--provider", "cpu", "--threads", 1]


def _photo(folder, w, h, name="p.png"):
    p = folder / name
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
    return p


@pytest.mark.parametrize("w,h,args,says", [
    (3000, 3, DREAM, "is 3000x3 pixels: its shorter side is below 8 pixels"),
    (1, 1, DREAM, "is 1x1 pixels: its shorter side is below 8 pixels"),
    (1, 1, ["invert", "--iterations", 1, "--provider", "cpu"], "is 1x1 pixels"),
    (7, 300, ["run", "saliency", "--iterations", 1, "--provider", "cpu"], "is 7x300 pixels"),
    (3000, 40, DREAM, "--max-side 512 makes the 3000x40 photo PHOTO 512x7 pixels, its shorter "
                      "side below 8; use --max-side 563 or more"),
    (40, 3000, DREAM + ["--max-side", 100], "makes the 40x3000 photo PHOTO 1x100 pixels"),
], ids=["panorama", "1x1-dream", "1x1-invert", "thin-plugin", "thin-at-max-side", "tall"])
def test_photos_too_small_or_too_thin_are_refused_naming_the_size(tmp_path, w, h, args, says):
    photo = _photo(tmp_path, w, h)
    r = invoke(*args, "--image", photo, "-o", tmp_path / "o.png")
    line = one_error_line(r)
    assert r.exit_code == 2 and says.replace("PHOTO", str(photo)) in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_the_smallest_accepted_sizes_run(tmp_path):
    """8 pixels is the bound: an 8x8 photo, and the panorama at the --max-side the refusal named."""
    r = invoke(*DREAM, "--image", _photo(tmp_path, 8, 8), "-o", tmp_path / "a.png")
    assert r.exit_code == 0, r.output
    r = invoke(*DREAM, "--image", _photo(tmp_path, 3000, 40, "pano.png"), "--max-side", 563,
               "-o", tmp_path / "b.png")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert a.size == (8, 8) and b.size == (563, 8), (a.size, b.size)


def test_the_api_refuses_a_tiny_array_too():
    with pytest.raises(UsageError, match="photo <array> is 1x1 pixels"):
        ortviz.load(provider="cpu").deepdream(np.zeros((1, 1, 3), np.uint8), iterations=1)


def test_an_atlas_photo_too_thin_to_dream_is_refused_before_any_work(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos, 3000, 12, "strip.png")
    r = invoke("atlas", "-o", tmp_path / "site", "--photos", photos, "--layers", "_blocks.1",
               "--channels", 0, "--classes", 0, "--no-inversions", "--examples", 0,
               "--iterations", 1, "--provider", "cpu")
    line = one_error_line(r)
    assert r.exit_code == 2 and "makes the 3000x12 photo strip.png 512x2 pixels" in line, line
    assert not (tmp_path / "site").exists()


# -- huge photos ----------------------------------------------------------------------------------

def test_an_81_megapixel_jpeg_is_read_reduced_not_refused(tmp_path):
    """9000x9000 = 81 MP, over the 50 MP decoded: draft() decodes it at half of each side."""
    big = tmp_path / "phone.jpg"
    Image.linear_gradient("L").resize((9000, 9000)).save(big, quality=80)
    rgb = imagefiles.load_image(big)
    assert rgb.shape == (4500, 4500, 3)
    assert abs(int(rgb[0, 0, 0]) - 0) < 8 and abs(int(rgb[-1, 0, 0]) - 255) < 8  # the gradient
    r = invoke(*DREAM, "--image", big, "--max-side", 64, "-o", tmp_path / "d.png")
    assert r.exit_code == 0 and "possible decompression bomb" not in r.output, r.output
    with Image.open(tmp_path / "d.png") as d:
        assert d.size == (64, 64)


def test_the_least_reduction_that_fits_is_chosen(tmp_path):
    """3000x2000 with room for 1 MP: half (1.5 MP) does not fit, a quarter (750x500) does."""
    p = tmp_path / "p.jpg"
    a = np.zeros((2000, 3000, 3), np.uint8)
    a[:, :1500] = (200, 40, 40)
    Image.fromarray(a).save(p, quality=95)
    rgb = imagefiles.load_image(p, max_pixels=1_000_000)
    assert rgb.shape == (500, 750, 3)
    assert np.abs(rgb[250, 100].astype(int) - (200, 40, 40)).max() < 12 and rgb[250, 700].max() < 12


def _jpeg_claiming(tmp_path, w: int, h: int):
    """A small JPEG whose header (SOF0) claims ``w`` x ``h``: refused before any decoding."""
    p = tmp_path / "claims.jpg"
    Image.new("RGB", (16, 16)).save(p)
    data = bytearray(p.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    p.write_bytes(bytes(data))
    return p


def test_past_the_bound_a_jpeg_is_refused_in_one_line_naming_it(tmp_path):
    p = _jpeg_claiming(tmp_path, 60000, 60000)  # 3.6 GP: over 64 x 50 MP even at 1/8 per side
    with pytest.raises(imagefiles.ImageError) as e:
        imagefiles.load_image(p)
    msg = str(e.value)
    assert "60000x60000 = 3600000000 pixels is over the pixel limit of 50000000 decoded" in msg \
        and "JPEGs are read reduced up to 3200 megapixels" in msg and "\n" not in msg, msg


def test_other_formats_are_decoded_whole_so_their_bound_stays(tmp_path):
    Image.new("L", (3000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(imagefiles.ImageError, match="save it as a JPEG to have it read reduced"):
        imagefiles.load_image(tmp_path / "big.png", max_pixels=1_000_000)
