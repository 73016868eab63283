"""The natural parameterization (class visualization's default): its scale, its exact adjoint,
its images, and the step graphs running it."""

import numpy as np
import pytest

from ortviz.render import param as P
from ortviz.render.param.natural import DECAY

LOW = np.array([-2.1, -2.0, -1.8])
HIGH = np.array([2.2, 2.4, 2.6])


def radial_frequency(h: int, w: int) -> np.ndarray:
    """Cycles per pixel of each rfft2 coefficient, computed from the index grid (not
    ortviz.render.param.frequencies)."""
    ky = np.arange(h)
    ky = np.where(ky <= h // 2, ky, ky - h) / h
    kx = np.arange(w // 2 + 1) / w
    return np.hypot(ky[:, None], kx[None, :])


@pytest.mark.parametrize("hw", [(16, 18), (15, 17), (224, 224)])
def test_the_scale_is_fft_at_the_lowest_frequency_and_falls_as_f_to_the_decay(hw):
    h, w = hw
    nat, fft = P.Natural((1, 3, h, w)), P.Fourier((1, 3, h, w))
    f0 = 1.0 / max(h, w)
    f = np.maximum(radial_frequency(h, w), f0)
    expect = max(h, w) * (f0 / f) ** 1.5
    np.testing.assert_allclose(nat.scale, expect, rtol=1e-6, err_msg=f"{hw}")
    assert DECAY == 1.5
    # the same gain as fft's 1/f where f <= f0 (the mean and the lowest frequencies) ...
    low = radial_frequency(h, w) <= f0
    np.testing.assert_allclose(nat.scale[low], fft.scale[low], rtol=1e-6)
    # ... and the fine detail sqrt(f / f0) times smaller above it
    np.testing.assert_allclose(fft.scale / nat.scale, np.sqrt(f / f0), rtol=1e-5)
    # at decay 1 it is fft itself
    np.testing.assert_allclose(P.Natural((1, 3, h, w), decay=1.0).scale, fft.scale, rtol=1e-6)


# its adjoint by the dot-product identity: test_param.py, with Fourier's


@pytest.mark.parametrize("w", [18, 17])
@pytest.mark.parametrize("seed", [0, 1])
def test_natural_image_is_the_scaled_inverse_fft_computed_directly(w, seed):
    """image(p) against an independent inverse DFT: the full Hermitian spectrum built by hand
    and summed with numpy's complex ifft2 (no irfft2), float64 (tolerance: the float32 scale)."""
    h = 16
    par = P.Natural((1, 3, h, w))
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(par.params_shape)
    half = (p[..., 0] + 1j * p[..., 1]) * radial_scale(h, w)
    full = np.zeros((1, 3, h, w), complex)
    full[..., : w // 2 + 1] = half
    for kx in range(w // 2 + 1, w):   # the other half: the Hermitian mirror
        full[..., kx] = np.conj(half[..., (-np.arange(h)) % h, w - kx])
    # the real part is the inverse of the Hermitian-symmetrized spectrum: what irfft2 computes
    # where a coefficient is its own mirror (column 0, and w/2 for even w)
    direct = np.fft.ifft2(full, norm="ortho").real
    # the parameterization's scale is float32: agreement to its rounding
    np.testing.assert_allclose(par.image(p), direct, rtol=1e-6, atol=1e-6 * np.abs(direct).max(),
                               err_msg=f"seed={seed}, w={w}")


def radial_scale(h: int, w: int) -> np.ndarray:
    f0 = 1.0 / max(h, w)
    return max(h, w) * (f0 / np.maximum(radial_frequency(h, w), f0)) ** 1.5


@pytest.mark.parametrize("seed", [0, 1])
def test_colour_wrapped_natural_has_the_exact_adjoint(seed):
    """Through the colour matrix and the sigmoid: <J d, y> by central differences against
    <d, J^T y> from image_vjp, float64."""
    par = P.make("natural", (2, 3, 16, 18), LOW, HIGH)
    rng = np.random.default_rng(seed)
    p = par.init(rng).astype(np.float64) * 300  # away from the flat grey start
    d = rng.standard_normal(p.shape)
    y = rng.standard_normal(par.shape)
    eps = 1e-5
    jd = (par.image(p + eps * d) - par.image(p - eps * d)) / (2 * eps)
    a, b = np.vdot(jd, y), np.vdot(d, par.image_vjp(p, y))
    assert abs(a - b) < 1e-6 * abs(a), f"seed={seed}: {a!r} vs {b!r}"


def test_make_natural_stays_in_range_starts_grey_and_starts_from_a_picture():
    shape = (1, 3, 16, 18)
    par = P.make("natural", shape, LOW, HIGH)
    x = par.image(par.init(np.random.default_rng(0)))
    lo, hi = LOW.reshape(1, 3, 1, 1), HIGH.reshape(1, 3, 1, 1)
    assert (x >= lo).all() and (x <= hi).all()
    np.testing.assert_allclose(x, np.broadcast_to((lo + hi) / 2, shape), atol=0.2)
    pic = np.random.default_rng(1).uniform(LOW.reshape(1, 3, 1, 1) + 0.5, HIGH.reshape(1, 3, 1, 1) - 0.5,
                                           shape)
    started = P.make("natural", shape, LOW, HIGH, start=pic)
    np.testing.assert_allclose(started.image(started.init(np.random.default_rng(2))), pic, atol=1e-4)


def test_the_step_graphs_run_natural_as_the_numpy_loop_does():
    """The default recipe on the step graphs (Engine step="graph"): the same picture as the numpy
    loop to float32 rounding after 8 steps of a smooth objective (seed 0, target seed 17)."""
    import ortviz
    from ortviz.render import stepgraph
    from ortviz.render.context import Context
    from ortviz.render.loop import optimize
    from ortviz.render.optim import Adam
    from ortviz.techniques import recipes

    target = np.random.default_rng(17).standard_normal((1, 3, 224, 224)).astype(np.float32)

    def quadratic(x):
        d = x - target
        return float(-0.5 * (d * d).sum()), -d

    outs = []
    for step in ("numpy", "graph"):
        model = ortviz.load(provider="cpu", threads=1, step=step)
        ctx = Context(model.engine, np.random.default_rng(0), 8, targets=[130])
        par = recipes.parameterization(ctx, "natural", ctx.size)
        ts = recipes.transform_list(ctx, "standard")
        assert stepgraph.supports(par, Adam(0.05), 1, (), None, ts, ctx.size)
        outs.append(optimize(ctx, quadratic, par, ts, Adam(0.05), 8).image)
    assert np.abs(outs[0] - outs[1]).max() <= 1e-5
