"""Image parameterizations: exact adjoints, ranges, colour statistics, batch independence."""

import numpy as np
import pytest

from ortviz.render import param as P
from ortviz.render.param.colour import EIGVAL, EIGVEC

LOW = np.array([-2.1, -2.0, -1.8])
HIGH = np.array([2.2, 2.4, 2.6])


def spectra(shape):
    return {"fourier": P.Fourier(shape, decay=1.0), "fourier-decay1.5": P.Fourier(shape, decay=1.5),
            "maco-photos": P.Maco(shape, "photos"), "maco-power": P.Maco(shape, "power")}


@pytest.mark.parametrize("kind", ["Fourier", "Natural"])  # natural: fft's spectrum, a steeper scale
@pytest.mark.parametrize("w", [18, 17])  # even and odd widths (the Nyquist column)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fourier_adjoint_by_the_dot_product_identity(kind, w, seed):
    """Fourier and Natural are linear: <image(p), y> = <p, image_vjp(p, y)>, float64."""
    par = getattr(P, kind)((2, 3, 16, w))
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(par.params_shape)
    y = rng.standard_normal(par.shape)
    a, b = np.vdot(par.image(p), y), np.vdot(p, par.image_vjp(p, y))
    assert par.image(p).dtype == np.float64
    assert abs(a - b) < 1e-10 * abs(a), f"{kind} seed={seed}, w={w}: {a!r} vs {b!r}"


def jvp_vjp_gap(par, seed: int) -> float:
    """The adjoint of a nonlinear map at p: <J d, y> (central differences, float64) against
    <d, J^T y> from image_vjp; relative gap."""
    rng = np.random.default_rng(seed)
    p = par.init(rng).astype(np.float64) * 3  # away from the flat start
    d = rng.standard_normal(p.shape)
    y = rng.standard_normal(par.shape)
    eps = 1e-5
    jd = (par.image(p + eps * d) - par.image(p - eps * d)) / (2 * eps)
    a, b = np.vdot(jd, y), np.vdot(d, par.image_vjp(p, y))
    return abs(a - b) / abs(a)


@pytest.mark.parametrize("name", ["fourier", "fourier-decay1.5", "maco-photos", "maco-power"])
@pytest.mark.parametrize("squash", ["sigmoid", "clip"])
@pytest.mark.parametrize("seed", [0, 1])
def test_colour_wrapped_spectra_have_exact_adjoints(name, squash, seed):
    shape = (2, 3, 16, 18)
    par = P.Colour(spectra(shape)[name], LOW, HIGH, squash=squash)
    gap = jvp_vjp_gap(par, seed)
    # clip: a coefficient that crosses a clip edge inside +-eps would show; none does at 1e-5
    assert gap < 1e-6, f"{name}/{squash}, seed={seed}: <Jd,y> vs <d,J^T y> gap {gap:.2e}"


@pytest.mark.parametrize("seed", [0, 1])
def test_maco_phase_adjoint(seed):
    par = P.Maco((1, 3, 12, 15), "photos")
    gap = jvp_vjp_gap(par, seed)
    assert gap < 1e-6, f"seed={seed}: gap {gap:.2e}"


def test_pixel_is_the_identity_and_projects_into_range():
    par = P.Pixel((1, 3, 4, 5), LOW, HIGH)
    p = np.random.default_rng(0).standard_normal(par.shape) * 5
    g = np.random.default_rng(1).standard_normal(par.shape)
    assert par.image(p) is p and par.image_vjp(p, g) is g
    q = par.project(p)
    lo, hi = LOW.astype(np.float32).reshape(1, 3, 1, 1), HIGH.astype(np.float32).reshape(1, 3, 1, 1)
    assert (q >= lo).all() and (q <= hi).all() and (q == lo).any() and (q == hi).any()
    assert np.array_equal(q, np.clip(p, lo, hi))


def test_colour_matrix_is_the_normalized_square_root_of_the_covariance():
    c = P.colour_sqrt()
    cov = EIGVEC @ np.diag(EIGVAL) @ EIGVEC.T
    k = np.linalg.norm(EIGVEC * np.sqrt(EIGVAL), axis=0).max()
    np.testing.assert_allclose((c * k) @ (c * k).T, cov, rtol=1e-12, atol=1e-12)
    assert np.isclose(np.linalg.norm(c, axis=0).max(), 1.0)


@pytest.mark.parametrize("name", ["fft", "maco"])
def test_images_stay_inside_the_valid_range_and_start_grey(name):
    par = P.make(name, (2, 3, 24, 24), LOW, HIGH)
    p = par.init(np.random.default_rng(0))
    x = par.image(p)
    assert x.dtype == np.float32 and x.shape == (2, 3, 24, 24)
    lo, hi = LOW.reshape(1, 3, 1, 1), HIGH.reshape(1, 3, 1, 1)
    assert (x > lo).all() and (x < hi).all()
    big = par.image(p * 1e3)
    assert (big >= lo - 1e-5).all() and (big <= hi + 1e-5).all()
    if name == "fft":  # the spectrum starts tiny: a near-uniform grey
        np.testing.assert_allclose(x, (lo + hi) / 2 + 0 * x, atol=0.05 * (HIGH - LOW).max())


def test_maco_magnitude_gives_unit_variance_colour_with_a_grey_mean():
    h, w = 32, 40
    for m in (P.photo_magnitude(h, w), P.power_magnitude(h, w)):
        assert m.shape == (3, h, w // 2 + 1) and m[:, 0, 0].max() == 0 and (m >= 0).all()
        par = P.Maco((8, 3, h, w), m)
        u = par.image(par.init(np.random.default_rng(0))).astype(np.float64)
        rgb = np.einsum("ij,njhw->nihw", P.colour_sqrt(), u)
        assert abs(rgb.var(axis=(2, 3)).mean() - 1.0) < 0.15, rgb.var(axis=(2, 3)).mean()
        assert np.abs(u.mean(axis=(2, 3))).max() < 1e-5


@pytest.mark.parametrize("name", ["pixel", "fft", "maco"])
def test_batch_slots_are_independent(name):
    """Slot 0 of a batch of 2 is the batch of 1 with slot 0's parameters: forward and adjoint."""
    two = P.make(name, (2, 3, 12, 14), LOW, HIGH)
    one = P.make(name, (1, 3, 12, 14), LOW, HIGH)
    p2 = two.init(np.random.default_rng(0))
    g2 = np.random.default_rng(1).standard_normal(two.shape).astype(np.float32)
    np.testing.assert_array_equal(one.image(p2[:1]), two.image(p2)[:1])
    np.testing.assert_allclose(one.image_vjp(p2[:1], g2[:1]), two.image_vjp(p2, g2)[:1], rtol=1e-6, atol=1e-6)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown parameterization 'wavelet'"):
        P.make("wavelet", (1, 3, 8, 8), LOW, HIGH)
    with pytest.raises(ValueError, match="squash"):
        P.Colour(P.Fourier((1, 3, 8, 8)), LOW, HIGH, squash="tanh")


def inside(rng, shape, lo=0.01, hi=0.99):
    """A float64 model-space picture strictly inside the valid range."""
    return LOW.reshape(1, 3, 1, 1) + (HIGH - LOW).reshape(1, 3, 1, 1) * rng.uniform(lo, hi, shape)


@pytest.mark.parametrize("w", [18, 17])  # even and odd widths (the Nyquist column)
@pytest.mark.parametrize("squash", ["sigmoid", "clip"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectra_start_exactly_from_a_picture_float64(w, squash, seed):
    """from_image inverts squash, colour matrix and transform: image(from_image(x)) = x in
    float64 (fft; and maco under the picture's own magnitude), relative 1e-12 of the range."""
    shape = (2, 3, 16, w)
    x = inside(np.random.default_rng(seed), shape)
    fft = P.Colour(P.Fourier(shape, decay=1.3), LOW, HIGH, squash=squash)
    u = fft.unsquash(x)
    assert u.dtype == np.float64
    back = fft.image(fft.inner.from_image(u))
    assert np.abs(back - x).max() < 1e-12 * (HIGH - LOW).max(), f"fft/{squash}, seed={seed}, w={w}"
    maco = P.Colour(P.Maco(shape, P.spectrum_magnitude(u)), LOW, HIGH, squash=squash)
    back = maco.image(maco.inner.from_image(u))
    assert np.abs(back - x).max() < 1e-12 * (HIGH - LOW).max(), f"maco/{squash}, seed={seed}, w={w}"


@pytest.mark.parametrize("name", P.NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_make_with_a_start_begins_at_that_picture(name, seed):
    """The float32 parameterizations the techniques use start at the picture (float32 rounding:
    1e-5 of the range), whatever the rng; the start is not changed by the optimizer's moves."""
    shape = (2, 3, 20, 23)  # two slots, two pictures (maco: a magnitude per slot)
    x = inside(np.random.default_rng(seed), shape).astype(np.float32)
    par = P.make(name, shape, LOW, HIGH, start=x)
    p = par.init(np.random.default_rng(seed + 50))
    assert np.abs(par.image(p) - x).max() < 1e-5 * (HIGH - LOW).max(), f"{name}, seed={seed}"
    p += 1.0
    assert np.abs(par.image(par.init(np.random.default_rng(0))) - x).max() < 1e-5 * (HIGH - LOW).max()


def test_a_saturated_picture_comes_back_within_half_a_grey_level():
    """Pixels at 0 or 255 have no finite sigmoid inverse: clamped half a grey level inside."""
    shape = (1, 3, 8, 9)
    rng = np.random.default_rng(4)
    x = np.where(rng.uniform(size=shape) < 0.5, LOW.reshape(1, 3, 1, 1), HIGH.reshape(1, 3, 1, 1))
    par = P.make("fft", shape, LOW, HIGH, start=x)
    grey = ((HIGH - LOW) / 255).reshape(1, 3, 1, 1)
    gap = np.abs(par.image(par.init(rng)) - x) / grey
    assert gap.max() <= 0.5 + 1e-3, f"seed=4: {gap.max():.4f} grey levels"


def test_a_start_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="start image"):
        P.make("fft", (1, 3, 8, 8), LOW, HIGH, start=np.zeros((1, 3, 8, 9)))
