"""Transforms and the warp they compose into: exact adjoints and what each one does."""

import numpy as np
import pytest

from ortviz.render import modelspace, transforms as tf
from ortviz.render.warp import MODES, Warp

TOL = 1e-9  # relative, float64 arithmetic on both sides of the identity


def dot_gap(warp, seed: int, lead=(2, 3)) -> float:
    """|<W x, y> - <x, W^T y>| / |<W x, y>| for random float64 x, y (a Warp or a Chain)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(lead + warp.in_hw)
    y = rng.standard_normal(lead + warp.out_hw)
    lin = warp.linear()  # without the constant fill
    a, b = np.vdot(lin.forward(x), y), np.vdot(x, lin.adjoint(y))
    assert lin.forward(x).dtype == np.float64 and lin.adjoint(y).dtype == np.float64
    return abs(a - b) / abs(a)


EACH = {
    "pad-constant": [tf.Pad(5, "constant", 0.3)],
    "pad-reflect": [tf.Pad(5, "reflect")],
    "crop": [tf.RandomCrop(6)],
    "scale": [tf.RandomScale((0.8, 0.9, 1.1, 1.25))],
    "rotate": [tf.RandomRotate((-10, -3, 7, 10))],
    "jitter": [tf.Jitter(9)],
    "zoom": [tf.Zoom(0.3)],
    "box": [tf.RandomBox(0.3, 0.9)],
    "light": tf.preset("light"),
    "standard": tf.preset("standard", fill=[0.1, -0.2, 0.3]),
    "box+standard": [tf.RandomBox(0.5, 1.0)] + tf.preset("standard"),
    "wide": tf.preset("wide", fill=[0.1, -0.2, 0.3]),
}


@pytest.mark.parametrize("name", sorted(EACH))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_transform_has_an_exact_adjoint(name, seed):
    rng = np.random.default_rng(seed)
    for in_hw, out_hw in (((31, 27), None), ((40, 44), (24, 24))):
        warp = tf.sample(EACH[name], rng, in_hw, out_hw)
        gap = dot_gap(warp, seed)
        assert gap < TOL, f"{name}, seed={seed}, {in_hw}->{warp.out_hw}: dot-product gap {gap:.2e}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rotated", [False, True])
def test_warp_adjoint_in_every_boundary_mode_and_path(mode, rotated):
    """Maps that read well outside the image: separable (axis-aligned) and general paths."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.uniform(-0.6, 0.6) if rotated else 0.0
        m = np.array([[1.3 * np.cos(a), -np.sin(a), -7.5], [np.sin(a), 0.8 * np.cos(a), 4.25]])
        warp = Warp((13, 17), (21, 19), m, mode, value=0.7)
        gap = dot_gap(warp, seed)
        assert gap < TOL, f"mode={mode}, rotated={rotated}, seed={seed}: dot-product gap {gap:.2e}"


def test_jitter_is_a_circular_shift():
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 15)).astype(np.float32)
    for seed in range(5):
        warp = tf.sample([tf.Jitter(4)], np.random.default_rng(seed), x.shape[2:])
        oy, ox = (int(v) for v in np.random.default_rng(seed).integers(-4, 5, size=2))
        assert np.array_equal(warp.forward(x), np.roll(x, (oy, ox), axis=(-2, -1))), f"seed={seed}"


def test_pad_and_crop_are_exact_slices():
    x = np.random.default_rng(1).standard_normal((1, 3, 10, 11))
    refl = tf.sample([tf.Pad(3, "reflect")], np.random.default_rng(0), (10, 11)).forward(x)
    np.testing.assert_array_equal(refl, np.pad(x, ((0, 0), (0, 0), (3, 3), (3, 3)), mode="reflect"))
    value = np.array([0.5, -1.0, 2.0])
    const = tf.sample([tf.Pad(2, "constant", tuple(value))], np.random.default_rng(0), (10, 11)).forward(x)
    want = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))) + value.reshape(1, 3, 1, 1) * \
        np.pad(np.zeros((10, 11)), 2, constant_values=1.0)
    np.testing.assert_allclose(const, want, rtol=0, atol=1e-6)
    crop = tf.sample([tf.RandomCrop(4)], np.random.default_rng(7), (10, 11))
    oy, ox = (int(v) for v in np.random.default_rng(7).integers(0, 5, size=2))
    np.testing.assert_array_equal(crop.forward(x), x[..., oy:oy + 6, ox:ox + 7])


def test_resize_to_the_model_size_matches_imaging_resize():
    x = np.random.default_rng(2).standard_normal((1, 3, 37, 29)).astype(np.float32)
    warp = tf.sample([], np.random.default_rng(0), (37, 29), (24, 24))
    np.testing.assert_allclose(warp.forward(x), modelspace.resize(x, (24, 24)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_rotated_map_is_the_composed_coordinate_map(seed):
    """Sampled as axis-aligned warp + rotation, a smooth image comes out as the single
    composed map would make it (two interpolations of a linear ramp are exact)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(60.0), np.arange(60.0), indexing="ij")
    ramp = (0.3 * yy - 0.2 * xx + 1.0)[None, None]
    ts = [tf.RandomScale((0.9, 1.1)), tf.RandomRotate((-8, 6)), tf.RandomCrop(4)]
    chain = tf.sample(ts, rng, (60, 60), (40, 40))
    assert len(chain.warps) == 2, "a rotation should be sampled on its own"
    one = Warp((60, 60), (40, 40), chain.warps[0].matrix @ np.vstack([chain.warps[1].matrix, [0, 0, 1]]))
    inner = (slice(None), slice(None), slice(8, 32), slice(8, 32))  # away from the corners
    # float32 weights: 1e-5 on values of order 10
    np.testing.assert_allclose(chain.forward(ramp)[inner], one.forward(ramp)[inner], rtol=0, atol=1e-5)


def test_no_transforms_is_the_identity():
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    warp = tf.sample([], np.random.default_rng(0), (8, 8), (8, 8))
    assert warp.forward(x) is x and warp.adjoint(x) is x


def test_rotation_turns_the_picture_about_its_centre():
    """A 90-degree turn of a square image moves row 0 into a border column."""
    x = np.zeros((1, 1, 9, 9))
    x[..., 0, :] = 1.0
    y = tf.sample([tf.RandomRotate((90,))], np.random.default_rng(0), (9, 9)).forward(x)
    col = next(c for c in (0, 8) if np.allclose(y[0, 0, :, c], 1.0))
    assert np.allclose(np.delete(y[0, 0], col, axis=1), 0.0, atol=1e-6)  # angle kept to 1e-9 rad


def test_one_boundary_rule_per_pipeline_and_unknown_presets():
    with pytest.raises(ValueError, match="one boundary rule"):
        tf.sample([tf.Pad(2, "constant"), tf.Jitter(2)], np.random.default_rng(0), (8, 8))
    with pytest.raises(ValueError, match="unknown transform preset 'heavy'"):
        tf.preset("heavy")
    with pytest.raises(ValueError, match="boundary mode"):
        Warp((4, 4), (4, 4), np.eye(2, 3), mode="mirror")


SHIFTS = [  # (in_hw, out_hw, oy, ox, mode): whole-pixel shifts, copied without weights
    ((12, 15), (12, 15), 3, -5, "wrap"),      # a jitter: np.roll
    ((12, 15), (12, 15), -11, 14, "wrap"),
    ((20, 18), (9, 7), 4, 11, "constant"),    # boxes inside the input, any mode
    ((20, 18), (20, 18), 0, 0, "edge"),
    ((20, 18), (13, 5), 7, 0, "reflect"),
]


@pytest.mark.parametrize("in_hw,out_hw,oy,ox,mode", SHIFTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_whole_pixel_shifts_are_copies_with_exact_adjoints(in_hw, out_hw, oy, ox, mode, seed):
    """The shift plan: dot-product identity (float64), and the same map as the interpolation
    matrices it stands in for (float64, 1e-12)."""
    from ortviz.render.warp import _Separable, _Shift
    m = np.array([[1.0, 0.0, oy], [0.0, 1.0, ox]])
    warp = Warp(in_hw, out_hw, m, mode, value=0.4)
    assert warp.identity or isinstance(warp.plan, _Shift), type(warp.plan)
    gap = dot_gap(warp, seed)
    assert gap < TOL, f"{in_hw}->{out_hw} by ({oy},{ox}) {mode}, seed={seed}: dot-product gap {gap:.2e}"
    x = np.random.default_rng(seed).standard_normal((2, 3) + in_hw)
    ref = _Separable(in_hw, out_hw, m, mode).forward(x)
    assert np.abs(warp.forward(x) - ref).max() < 1e-12, f"{mode}, seed={seed}"


def test_keeping_the_canvas_size_samples_at_that_size():
    """out_hw None (no size asked for): a jitter keeps any size; the standard list
    changes it by its pads and crops only (scale 1.0 drawn here: no resize to a model size)."""
    x = np.random.default_rng(2).standard_normal((1, 3, 301, 517)).astype(np.float32)
    warp = tf.sample([tf.Jitter(16)], np.random.default_rng(0), x.shape[2:])
    assert warp.out_hw == (301, 517) and warp.forward(x).shape == x.shape
    std = [tf.Pad(12), tf.RandomCrop(8), tf.RandomScale((1.0,)), tf.RandomCrop(4)]
    assert tf.sample(std, np.random.default_rng(0), x.shape[2:]).out_hw == (301 + 12, 517 + 12)


@pytest.mark.parametrize("mode", ["edge", "reflect", "wrap", "constant"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separable_taps_match_the_general_sampler(mode, seed):
    """An axis-aligned map (scale, fractional offset; pads reach outside the input) through the
    two-tap separable plan and through the general four-tap sampler: the same values within
    1e-6 of max|x| (both keep their weights in float32: per axis here, products of the two axes'
    there), and the separable adjoint passes the dot-product identity (float64)."""
    from ortviz.render.warp import _General, _Separable
    rng = np.random.default_rng(seed)
    in_hw, out_hw = (int(rng.integers(5, 40)), int(rng.integers(5, 40))), \
        (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    m = np.array([[rng.uniform(0.5, 1.6), 0.0, rng.uniform(-6, 6)],
                  [0.0, rng.uniform(0.5, 1.6), rng.uniform(-6, 6)]])
    x = rng.standard_normal((2, 3) + in_hw)
    sep, gen = _Separable(in_hw, out_hw, m, mode), _General(in_hw, out_hw, m, mode)
    err = np.abs(sep.forward(x) - gen.forward(x)).max() / np.abs(x).max()
    assert err < 1e-6, f"{mode}, seed={seed}: separable vs general {err:.2e}"
    if mode == "constant":
        assert np.abs(sep.fill - gen.fill).max() < 1e-6, f"seed={seed}: fill"
    y = rng.standard_normal((2, 3) + out_hw)
    a, b = np.vdot(sep.forward(x), y), np.vdot(x, sep.adjoint(y))
    assert abs(a - b) / abs(a) < TOL, f"{in_hw}->{out_hw} {mode}, seed={seed}: dot-product gap"


def test_wide_is_standard_with_a_wider_scale():
    """``wide`` (``--transforms wide``, measured for class visualization) is Lucid's
    ``standard`` list with the scale drawn from 0.8..1.2 instead of 0.9..1.1; every other
    transform is the same."""
    s, w = tf.preset("standard", fill=0.2), tf.preset("wide", fill=0.2)
    differ = [(a, b) for a, b in zip(s, w, strict=True) if a != b]
    assert len(differ) == 1 and all(isinstance(t, tf.RandomScale) for t in differ[0]), differ
    (old, new), = differ
    assert (min(old.scales), max(old.scales), len(old.scales)) == (0.9, 1.1, 11), old
    assert (min(new.scales), max(new.scales), len(new.scales)) == (0.8, 1.2, 11), new
