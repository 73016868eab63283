"""The render loop: the whole chain's gradient (parameterization -> transforms -> objective)
against finite differences, on a numpy objective and through the default bundle's graph."""

from types import SimpleNamespace

import numpy as np
import pytest

from ortviz.render import param as P, transforms as tf
from ortviz.render.context import Context, NumericalError
from ortviz.render.loop import graph_objective, optimize
from ortviz.techniques import recipes

LOW, HIGH = np.full(3, -1.0), np.full(3, 1.0)


class Recorder:
    """An optimizer that keeps the gradient it is given and does not move."""

    def __init__(self):
        self.grads = []

    def step(self, g):
        self.grads.append(g.astype(np.float64))
        return np.zeros_like(g)


def fake_ctx(seed, size):
    reports = []
    return SimpleNamespace(rng=np.random.default_rng(seed), size=size, batch=1,
                           report=lambda t, v, x: reports.append((t, v, x.copy())), reports=reports)


def quadratic(seed, size):
    """value(x) = sum(a * x) + 0.5 * sum(b * x^2): float64, its exact gradient."""
    rng = np.random.default_rng(seed + 100)
    a, b = rng.standard_normal((1, 3, *size)), rng.uniform(0.5, 1.5, (1, 3, *size))
    return lambda x: (float((a * x + 0.5 * b * x * x).sum()), a + b * x)


CHAINS = [("fft", "standard", (40, 40)), ("maco", "standard", (32, 32)), ("pixel", "light", (24, 24)),
          ("fft", "none", (36, 30))]


@pytest.mark.parametrize("name,preset,canvas", CHAINS)
@pytest.mark.parametrize("seed", [0, 1])
def test_chain_gradient_against_finite_differences(name, preset, canvas, seed):
    size = (24, 24)
    obj = quadratic(seed, size)
    ctx = fake_ctx(seed, size)
    par = P.make(name, (1, 3, *canvas), LOW, HIGH)
    p = (par.init(np.random.default_rng(seed)) * (30 if name == "fft" else 1)).astype(np.float64)
    ts = tf.preset(preset) if preset != "light" else [tf.Jitter(5)]
    rec = Recorder()
    optimize(ctx, obj, par, ts, rec, steps=1, params=p, maximize=False)
    # the same draw as the loop's first step
    warp = tf.sample(ts, np.random.default_rng(seed), canvas, size)
    f = lambda q: obj(warp.forward(par.image(q)))[0]  # noqa: E731
    d = np.random.default_rng(seed + 7).standard_normal(p.shape)
    eps = 1e-4
    fd = (f(p + eps * d) - f(p - eps * d)) / (2 * eps)
    an = np.vdot(rec.grads[0], d)
    assert abs(fd - an) <= 1e-5 * abs(fd) + 1e-8, f"{name}/{preset}, seed={seed}: fd {fd!r} vs loop {an!r}"


def test_views_average_and_ascent_flips_the_sign():
    size = (16, 16)
    obj = quadratic(0, size)
    par = P.make("fft", (1, 3, 20, 20), LOW, HIGH)
    p = par.init(np.random.default_rng(0)).astype(np.float64)
    ts = [tf.RandomBox(0.5, 1.0)]
    up, down = Recorder(), Recorder()
    optimize(fake_ctx(3, size), obj, par, ts, up, steps=1, params=p, views=3)
    optimize(fake_ctx(3, size), obj, par, ts, down, steps=1, params=p, views=3, maximize=False)
    np.testing.assert_allclose(up.grads[0], -down.grads[0], rtol=0, atol=1e-12)
    rng, g = np.random.default_rng(3), 0
    for _ in range(3):
        warp = tf.sample(ts, rng, (20, 20), size)
        g = g + par.image_vjp(p, warp.adjoint(obj(warp.forward(par.image(p)))[1])) / 3
    # the loop hands gradients on in float32
    np.testing.assert_allclose(down.grads[0], g, rtol=0, atol=1e-6 * np.abs(g).max())


def test_each_step_is_reported_once_with_the_image_after_it():
    ctx = fake_ctx(0, (16, 16))
    par = P.make("fft", (1, 3, 16, 16), LOW, HIGH)
    out = optimize(ctx, quadratic(0, (16, 16)), par, [tf.Jitter(2)], None, steps=4, start=10)
    assert [t for t, _, _ in ctx.reports] == [10, 11, 12, 13]
    np.testing.assert_array_equal(ctx.reports[-1][2], out.image)
    np.testing.assert_array_equal(par.image(out.params), out.image)


@pytest.mark.parametrize("name", ["fft", "maco"])
def test_chain_gradient_through_the_default_bundle(model, name):
    """Spectrum -> colour -> Lucid transforms -> resize -> class-score graph: the loop's
    parameter gradient against central differences of the graph's loss (float32 graph: 2 %)."""
    seed = 5
    ctx = Context(model.engine, np.random.default_rng(seed), 1, targets=[130])
    objective = graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())
    par = recipes.parameterization(ctx, name, (240, 240))
    p = par.init(np.random.default_rng(seed)) * (20 if name == "fft" else 1)
    ts = recipes.transform_list(ctx, "standard")
    rec = Recorder()
    optimize(ctx, objective, par, ts, rec, steps=1, params=p)
    warp = tf.sample(ts, np.random.default_rng(seed), (240, 240), ctx.size)
    # along the loop's ascent direction (a random direction is nearly orthogonal to the
    # gradient: its derivative drowns in the float32 loss), a step small against ReLU6 kinks
    d = -rec.grads[0].astype(np.float32)
    d *= np.linalg.norm(p) / np.linalg.norm(d) * 3e-5
    f = lambda q: objective(warp.forward(par.image(q.astype(np.float32))))[0]  # noqa: E731
    fd = (f(p + d) - f(p - d)) / 2
    an = -np.vdot(rec.grads[0], d)  # the loop ascends: it hands the optimizer -grad
    assert abs(fd - an) <= 0.02 * abs(fd), f"{name}, seed={seed}: fd {fd:.5g} vs loop {an:.5g}"


def test_a_non_finite_objective_stops_the_loop(model):
    ctx = Context(model.engine, np.random.default_rng(0), 3, targets=[1])
    par = recipes.parameterization(ctx, "fft", ctx.size)
    with pytest.raises(NumericalError, match="iteration 1"):
        optimize(ctx, lambda x: (float("nan"), np.zeros_like(x)), par, [], None, steps=3)


@pytest.mark.parametrize("preset", ["light", "standard"])
def test_canvas_views_keep_the_canvas_size_for_an_any_size_objective(preset):
    """view_size="canvas": the objective sees the canvas at its own size (larger than the
    model's input here), and the chain's gradient is still exact (finite differences, float64)."""
    seen = []
    canvas, seed = (40, 52), 2
    obj = quadratic(seed, canvas)

    def any_size(x):
        seen.append(x.shape[2:])
        return obj(x)

    par = P.make("pixel", (1, 3, *canvas), LOW, HIGH, start=np.zeros((1, 3, *canvas)))
    p = np.random.default_rng(seed).uniform(-0.5, 0.5, (1, 3, *canvas))
    ts = [tf.Jitter(6)] if preset == "light" else tf.preset("standard", fill=0.2)
    rec = Recorder()
    optimize(fake_ctx(seed, (24, 24)), any_size, par, ts, rec, steps=1, params=p, view_size="canvas")
    assert seen == [canvas]
    warp = tf.sample(ts, np.random.default_rng(seed), canvas, canvas)
    d = np.random.default_rng(seed + 7).standard_normal(p.shape)
    f = lambda q: obj(warp.forward(par.image(q)))[0]  # noqa: E731
    fd = (f(p + 1e-4 * d) - f(p - 1e-4 * d)) / 2e-4
    an = -np.vdot(rec.grads[0], d)  # ascent: the optimizer is handed -grad
    assert abs(fd - an) <= 1e-5 * abs(fd), f"{preset}, seed={seed}: fd {fd!r} vs loop {an!r}"
