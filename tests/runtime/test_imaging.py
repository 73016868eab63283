"""Tests for ortviz.render.modelspace: file loading and saving, model-space conversions, blur,
regularizer gradients (checked against central finite differences), resize adjoint,
octaves and tiling. Pure numpy + Pillow; runs in a few seconds."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from ortviz.render import modelspace as im
from ortviz.run import imagefiles as files

pytestmark = pytest.mark.runtime

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _load_err(path, **kw):
    with pytest.raises(files.ImageError) as e:
        files.load_image(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------ load_image


def test_load_rgb_png_roundtrip(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    b = files.load_image(tmp_path / "a.png")
    assert b.dtype == np.uint8 and b.shape == (20, 30, 3)
    np.testing.assert_array_equal(a, b)


def test_load_missing_file(tmp_path):
    msg = _load_err(tmp_path / "nope.png")
    assert "nope.png" in msg and "no such file" in msg


def test_load_directory(tmp_path):
    assert "directory" in _load_err(tmp_path)


def test_load_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    msg = _load_err(tmp_path / "e.png")
    assert "e.png" in msg and "empty" in msg


def test_load_text_file_named_png(tmp_path):
    (tmp_path / "x.png").write_text("this is not an image\n")
    msg = _load_err(tmp_path / "x.png")
    assert "x.png" in msg and "not an image" in msg


def test_load_truncated_png(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    msg = _load_err(tmp_path / "t.png")
    assert "t.png" in msg and "decode" in msg


def test_load_bomb_refused_before_decoding(tmp_path):
    Image.new("L", (3000, 3000)).save(tmp_path / "big.png")
    msg = _load_err(tmp_path / "big.png", max_pixels=1_000_000)
    assert "pixel limit" in msg and "3000x3000" in msg


def test_load_animated_gif_refused(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    assert "animated" in _load_err(tmp_path / "a.gif")


def test_load_grayscale_becomes_rgb(tmp_path):
    g = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(g).save(tmp_path / "g.png")
    out = files.load_image(tmp_path / "g.png")
    assert out.shape == (10, 20, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_load_rgba_composited_over_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200  # red channel
    a[0, 0, 3] = 255  # opaque
    a[0, 1, 3] = 0  # fully transparent -> white
    a[0, 2, 3] = 128  # half
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    out = files.load_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    assert abs(int(out[0, 2, 0]) - 227) <= 1 and abs(int(out[0, 2, 1]) - 127) <= 1


def test_load_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = files.load_image(tmp_path / "c.jpg")
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    r, g, b = out[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60, out[8, 8]


def test_load_16bit_png_scaled(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    img.save(tmp_path / "s.png")
    out = files.load_image(tmp_path / "s.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_load_float_tiff_in_unit_range_scaled_else_refused(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(files.load_image(tmp_path / "f.tif")[0, :, 1], [0, 128, 255])
    Image.fromarray(np.array([[0.0, 7.0]], np.float32)).save(tmp_path / "g.tif")
    assert "0..1" in _load_err(tmp_path / "g.tif")


def test_load_applies_exif_orientation(tmp_path):
    img = Image.fromarray(_rgb(10, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "o.jpg", exif=exif)
    assert files.load_image(tmp_path / "o.jpg").shape == (30, 10, 3)


# -------------------------------------------------------------------- saving


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_save_image_roundtrip_lossless(tmp_path, ext):
    a = _rgb(seed=3)
    files.save_image(tmp_path / f"o{ext}", a)
    np.testing.assert_array_equal(files.load_image(tmp_path / f"o{ext}"), a)
    assert sorted(os.listdir(tmp_path)) == [f"o{ext}"]


def test_save_image_jpeg_close(tmp_path):
    a = np.full((16, 16, 3), (10, 120, 240), np.uint8)
    files.save_image(tmp_path / "o.jpg", a)
    assert np.abs(files.load_image(tmp_path / "o.jpg").astype(int) - a).max() <= 4


def test_save_image_unknown_extension_leaves_nothing(tmp_path):
    with pytest.raises(files.ImageError, match="extension"):
        files.save_image(tmp_path / "o.xyz", _rgb())
    assert os.listdir(tmp_path) == []


def test_save_image_missing_directory_raises(tmp_path):
    with pytest.raises(OSError):
        files.save_image(tmp_path / "no" / "o.png", _rgb())
    assert os.listdir(tmp_path) == []


def test_save_image_failure_mid_write_removes_temp_and_keeps_old(tmp_path, monkeypatch):
    target = tmp_path / "o.png"
    old = _rgb(seed=1)
    files.save_image(target, old)

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        files.save_image(target, _rgb(seed=2))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["o.png"]
    np.testing.assert_array_equal(files.load_image(target), old)


def test_save_image_rejects_bad_array(tmp_path):
    with pytest.raises(files.ImageError, match="uint8"):
        files.save_image(tmp_path / "o.png", np.zeros((4, 4, 3), np.float32))
    assert os.listdir(tmp_path) == []


def test_save_gif_animated_and_loops(tmp_path):
    frames = [np.full((12, 12, 3), v, np.uint8) for v in (0, 128, 255)]
    files.save_gif(tmp_path / "a.gif", frames, duration_ms=50)
    assert os.listdir(tmp_path) == ["a.gif"]
    with Image.open(tmp_path / "a.gif") as g:
        assert g.n_frames == 3
        assert g.info.get("loop") == 0
        assert g.info.get("duration") == 50


def test_save_gif_rejects_mixed_sizes(tmp_path):
    with pytest.raises(files.ImageError, match="same size"):
        files.save_gif(tmp_path / "a.gif", [_rgb(8, 8), _rgb(9, 8)])
    assert os.listdir(tmp_path) == []


def test_contact_sheet_layout():
    frames = [np.full((5, 7, 3), i * 40, np.uint8) for i in range(5)]
    sheet = files.contact_sheet(frames)  # 3 columns, 2 rows
    assert sheet.shape == (2 * 5 + 2, 3 * 7 + 2 * 2, 3)
    np.testing.assert_array_equal(sheet[5:7], 255)  # horizontal gutter
    np.testing.assert_array_equal(sheet[:, 7:9], 255)  # vertical gutter
    assert (sheet[7:12, 9:16] == 4 * 40).all()  # frame 4: row 1, column 1
    assert (sheet[7:12, 18:25] == 255).all()  # empty sixth cell
    assert files.contact_sheet(frames, columns=5).shape == (5, 5 * 7 + 4 * 2, 3)


# ----------------------------------------------------------------- model space


def test_to_model_from_model_roundtrip():
    a = _rgb(seed=4)
    x = im.to_model(a, MEAN, STD)
    assert x.shape == (1, 3, 20, 30) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 1, 2, 3], (a[2, 3, 1] - MEAN[1]) / STD[1], rtol=1e-5)
    np.testing.assert_array_equal(im.from_model(x, MEAN, STD), a)
    np.testing.assert_array_equal(im.from_model(x[0], MEAN, STD), a)


def test_to_model_resizes():
    a = _rgb(40, 60, seed=5)
    assert im.to_model(a, MEAN, STD, size=32).shape == (1, 3, 32, 32)
    assert im.to_model(a, MEAN, STD, size=(24, 48)).shape == (1, 3, 24, 48)
    flat = np.full((40, 60, 3), 77, np.uint8)
    np.testing.assert_array_equal(im.from_model(im.to_model(flat, MEAN, STD, 17), MEAN, STD), 77)


def test_from_model_clips_and_rounds():
    lo, hi = im.valid_range(MEAN, STD)
    x = np.concatenate([lo - 5, hi + 5], axis=3)  # (1, 3, 1, 2)
    out = im.from_model(x, MEAN, STD)
    np.testing.assert_array_equal(out[0, 0], 0)
    np.testing.assert_array_equal(out[0, 1], 255)


def test_valid_range_and_clip():
    lo, hi = im.valid_range(MEAN, STD)
    assert lo.shape == hi.shape == (1, 3, 1, 1) and lo.dtype == np.float32
    np.testing.assert_allclose(lo.ravel(), -np.array(MEAN) / STD, rtol=1e-6)
    np.testing.assert_allclose(hi.ravel(), (255 - np.array(MEAN)) / STD, rtol=1e-6)
    x = np.random.default_rng(0).normal(0, 5, (1, 3, 4, 4)).astype(np.float32)
    c = im.clip(x, lo, hi)
    assert c.dtype == np.float32 and (c >= lo).all() and (c <= hi).all()
    assert (c[(x > lo) & (x < hi)] == x[(x > lo) & (x < hi)]).all()


# ------------------------------------------------------------- shifts and blur


def test_jitter_unjitter_inverse():
    x = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    j = im.jitter(x, 2, -3)
    assert j[0, 0, 2, 0] == x[0, 0, 0, 3]
    np.testing.assert_array_equal(im.unjitter(j, 2, -3), x)


def test_random_shift_range():
    rng = np.random.default_rng(0)
    shifts = np.array([im.random_shift(rng, 3) for _ in range(500)])
    assert shifts.min() == -3 and shifts.max() == 3
    assert all(isinstance(v, int) for v in im.random_shift(rng, 3))
    assert im.random_shift(rng, 0) == (0, 0)


def test_gaussian_blur_properties():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 3, 32, 40)).astype(np.float32)
    assert im.gaussian_blur(x, 0) is x
    b = im.gaussian_blur(x, 1.5)
    assert b.shape == x.shape and b.dtype == np.float32
    assert b.std() < 0.6 * x.std()  # smoothing reduces variance of white noise
    const = np.full((1, 3, 9, 9), 2.5, np.float32)
    np.testing.assert_allclose(im.gaussian_blur(const, 2.0), 2.5, rtol=1e-5)
    # an impulse far from the border becomes the normalized, symmetric kernel
    imp = np.zeros((1, 1, 21, 21), np.float32)
    imp[0, 0, 10, 10] = 1
    k = im.gaussian_blur(imp, 1.0)[0, 0]
    np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(k, k.T, atol=1e-7)
    assert k.argmax() == 10 * 21 + 10 and k[10, 14] == 0  # radius 3


# ----------------------------------------------------------------- regularizers

# Central differences in float64 with step 1e-6; analytic and numeric gradients must agree
# to 1e-5 relative (+1e-7 absolute).
FD_STEP, FD_RTOL, FD_ATOL = 1e-6, 1e-5, 1e-7


def _numeric_grad(f, x):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += FD_STEP
        xm[i] -= FD_STEP
        g[i] = (f(xp) - f(xm)) / (2 * FD_STEP)
    return g


@pytest.mark.parametrize("seed", [0, 1])
def test_l2_grad_finite_differences(seed):
    x = np.random.default_rng(seed).normal(size=(1, 2, 3, 4))
    num = _numeric_grad(lambda v: 0.3 * np.sum(v ** 2), x)
    np.testing.assert_allclose(im.l2_grad(x, 0.3), num, rtol=FD_RTOL, atol=FD_ATOL,
                               err_msg=f"seed={seed}")


def _tv_by_loops(x, beta):
    """Total variation pixel by pixel, the definition written out (forward differences, zero
    past the last row and column; the 1e-8 inside the power for beta < 2)."""
    total = 0.0
    n, c, h, w = x.shape
    for i in range(n):
        for k in range(c):
            for r in range(h):
                for q in range(w):
                    dx = x[i, k, r, q + 1] - x[i, k, r, q] if q + 1 < w else 0.0
                    dy = x[i, k, r + 1, q] - x[i, k, r, q] if r + 1 < h else 0.0
                    s = dx * dx + dy * dy + (1e-8 if beta < 2 else 0.0)
                    total += s ** (beta / 2)
    return total


@pytest.mark.parametrize("seed,beta", [(0, 2.0), (1, 1.0), (2, 1.5), (3, 3.0)])
def test_tv_grad_finite_differences(seed, beta):
    x = np.random.default_rng(seed).normal(size=(1, 2, 4, 5))
    loss, g = im.tv_loss_and_grad(x, beta)
    assert loss == pytest.approx(_tv_by_loops(x, beta), rel=1e-12), f"seed={seed} beta={beta}"
    num = _numeric_grad(lambda v: im.tv_loss_and_grad(v, beta)[0], x)
    np.testing.assert_allclose(g, num, rtol=FD_RTOL, atol=FD_ATOL,
                               err_msg=f"seed={seed} beta={beta}")


def test_tv_loss_value():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = 1.0  # dx=1 at (0,0); dy=1 at (0,1)
    assert im.tv_loss_and_grad(x, 2.0)[0] == pytest.approx(2.0)
    assert im.tv_loss_and_grad(np.ones((1, 3, 5, 5)), 2.0)[0] == 0.0


@pytest.mark.parametrize("seed,alpha", [(0, 6.0), (1, 2.0), (2, 3.5)])
def test_alpha_norm_grad_finite_differences(seed, alpha):
    x = np.random.default_rng(seed).normal(size=(1, 2, 3, 3))
    loss, g = im.alpha_norm_loss_and_grad(x, alpha)
    assert loss == pytest.approx(np.sum(np.abs(x) ** alpha))
    num = _numeric_grad(lambda v: im.alpha_norm_loss_and_grad(v, alpha)[0], x)
    np.testing.assert_allclose(g, num, rtol=FD_RTOL, atol=FD_ATOL,
                               err_msg=f"seed={seed} alpha={alpha}")


# ---------------------------------------------------------- octaves and resize


def test_octave_sizes():
    assert im.octave_sizes((224, 300), 3, 1.4) == [(114, 153), (160, 214), (224, 300)]
    assert im.octave_sizes((10, 10), 1, 2.0) == [(10, 10)]
    for bad in [dict(octaves=0, scale=1.4), dict(octaves=3, scale=1.0), dict(octaves=2, scale=0.5)]:
        with pytest.raises(ValueError):
            im.octave_sizes((100, 100), **bad)


@pytest.mark.parametrize("seed,src,dst", [(0, (13, 17), (29, 8)), (1, (40, 31), (40, 31)),
                                          (2, (7, 50), (19, 23))])
def test_resize_adjoint(seed, src, dst):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3) + src)
    y = rng.normal(size=(2, 3) + dst)
    lhs = np.sum(im.resize(x, dst) * y)
    rhs = np.sum(x * im.resize_transpose(y, src))
    assert abs(lhs - rhs) <= 1e-5 * max(abs(lhs), abs(rhs)), f"seed={seed}: {lhs} vs {rhs}"


def test_resize_constant_identity_and_shape():
    c = np.full((1, 3, 11, 13), -1.25, np.float32)
    r = im.resize(c, (30, 7))
    assert r.shape == (1, 3, 30, 7) and r.dtype == np.float32
    np.testing.assert_allclose(r, -1.25, rtol=1e-6)
    x = np.random.default_rng(3).normal(size=(1, 3, 9, 12)).astype(np.float32)
    np.testing.assert_array_equal(im.resize(x, (9, 12)), x)


def test_resize_matches_half_pixel_bilinear():
    # 2 -> 4 upsampling with half-pixel centers: [a, b] -> [a, .75a+.25b, .25a+.75b, b]
    m = im._interp_matrix(2, 4)
    np.testing.assert_allclose(m, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    # 4 -> 2 downsampling averages pairs (no antialias beyond that)
    np.testing.assert_allclose(im._interp_matrix(4, 2), [[.5, .5, 0, 0], [0, 0, .5, .5]])


# ---------------------------------------------------------------------- tiling


def test_tile_origins_cover_and_align():
    origins = im.tile_origins((300, 410), (224, 224))
    assert sorted(origins) == [(0, 0), (0, 186), (76, 0), (76, 186)]
    cover = np.zeros((300, 410), int)
    for t, l in origins:
        cover[t:t + 224, l:l + 224] += 1
    assert (cover >= 1).all()
    assert im.tile_origins((224, 224), (224, 224)) == [(0, 0)]
    shuffled = im.tile_origins((700, 700), (224, 224), np.random.default_rng(0))
    assert sorted(shuffled) == sorted(im.tile_origins((700, 700), (224, 224)))
    with pytest.raises(ValueError):
        im.tile_origins((200, 400), (224, 224))


@pytest.mark.parametrize("size", [(300, 410), (224, 224), (500, 230)])
def test_tiled_gradient_elementwise_matches_untiled(size):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1, 3) + size).astype(np.float32)
    seen = []

    def grad_fn(t):
        seen.append(t.shape)
        return 2 * t

    g = im.tiled_gradient(x, (224, 224), grad_fn, rng)
    assert set(seen) == {(1, 3, 224, 224)}
    # overlaps count 1, 2 or 4 times, so averaging 2*t is exact in float32
    np.testing.assert_array_equal(g, 2 * x)


def test_tiled_gradient_seams_move():
    x = np.zeros((1, 1, 300, 300), np.float32)
    rng = np.random.default_rng(0)
    # grad_fn marks the tile's top-left pixel: its position in image coordinates moves
    def mark(t):
        g = np.zeros_like(t)
        g[..., 0, 0] = 1
        return g

    marks = {tuple(np.argwhere(im.tiled_gradient(x, (224, 224), mark, rng)[0, 0] > 0)[0])
             for _ in range(5)}
    assert len(marks) > 1


def test_contact_sheet_rejects_bad_columns_and_empty():
    with pytest.raises(ValueError):
        files.contact_sheet([_rgb(4, 4)], columns=0)
    with pytest.raises(files.ImageError):
        files.contact_sheet([])


@pytest.mark.parametrize("factor", [0.85, 0.93, 1.0, 1.07, 1.15])
def test_zoom_transpose_is_the_adjoint_of_zoom(factor):
    seed = 31
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 3, 37, 53))
    y = rng.standard_normal((1, 3, 37, 53))
    lhs = float((im.zoom(x, factor) * y).sum())
    rhs = float((x * im.zoom_transpose(y, factor)).sum())
    assert abs(lhs - rhs) <= 1e-9 * max(abs(lhs), 1.0), f"seed={seed} factor={factor}: {lhs} vs {rhs}"
    assert im.zoom(x, factor).shape == x.shape


def test_zoom_by_one_is_identity_and_enlarging_moves_content_outward():
    x = np.zeros((1, 1, 21, 21))
    x[..., 10, 15] = 1.0  # a dot right of the center
    assert np.allclose(im.zoom(x, 1.0), x)
    big = im.zoom(x, 1.3)
    assert np.unravel_index(np.argmax(big[0, 0]), (21, 21))[1] > 15


@pytest.mark.parametrize("hw,size,want", [((300, 451), (224, 224), (300, 300)),
                                          ((700, 1000), (224, 224), (700, 700)),
                                          ((400, 100), (50, 100), (50, 100)),
                                          ((300, 451), (300, 451), (300, 451))])
def test_photos_are_cropped_to_the_aspect_not_stretched(hw, size, want):
    rgb = np.zeros(hw + (3,), np.uint8)
    rgb[:, hw[1] // 2] = 255  # a vertical line through the centre stays one column wide
    c = im.crop_to_aspect(rgb, size)
    assert c.shape[:2] == want
    assert (c[:, :, 0].max(axis=0) == 255).sum() == 1
    x = im.to_model(rgb, 127.0, 128.0, size=size, crop=True)
    assert x.shape == (1, 3) + tuple(size)
