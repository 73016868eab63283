"""The step graphs (ortviz.render.stepgraph): each against the numpy implementation on the same inputs,
each adjoint by the dot-product identity, and the render loop with the step on the runtime
against the numpy loop."""

import numpy as np
import onnxruntime as ort
import pytest

import ortviz
from ortviz.engine.sessions import Engine
from ortviz.render import param as P, stepgraph as SG, transforms as tf
from ortviz.render.context import Context
from ortviz.render.loop import graph_objective, optimize
from ortviz.render.optim import Adam
from ortviz.techniques import recipes

LOW = np.array([-2.1, -2.0, -1.8])
HIGH = np.array([2.2, 2.4, 2.6])
GREY = (0.1, 0.05, 0.2)
REL = 1e-5          # float32 graph against numpy on the same inputs
DOT = 1e-5          # dot-product identity, inner products in float64 of float32 results


def run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def pick(model, feeds) -> dict:
    """The feeds ``model`` takes (the warp takes ``rfill`` only with a fill value)."""
    return {i.name: feeds[i.name] for i in model.graph.input}


def rel(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(np.asarray(b, np.float64)).max())


def recipe(shape, value=GREY, view=None):
    par = P.make("fft", shape, LOW, HIGH)
    return par, SG.Recipe.of(par, view or shape[2:], np.asarray(value), -1.0, Adam(0.05))


SHAPES = [(1, 3, 224, 224), (2, 3, 31, 46), (1, 3, 17, 9)]    # even, odd and mixed sides


@pytest.mark.parametrize("shape", SHAPES)
def test_param_graph_is_numpys_image(shape):
    seed = 11
    par, r = recipe(shape)
    p = (par.init(np.random.default_rng(seed)) * 80).astype(np.float32)  # well into the sigmoid
    x, s = run(r.param(), {"q": SG.planar(p)})
    assert rel(x, par.image(p)) <= REL, f"seed {seed}"
    u, = run(r.spectrum(), {"q": SG.planar(p)})
    assert rel(u, par.inner.image(p)) <= REL, f"seed {seed}"


@pytest.mark.parametrize("shape", SHAPES)
def test_param_adjoint_is_numpys_vjp(shape):
    seed = 12
    par, r = recipe(shape)
    rng = np.random.default_rng(seed)
    p = (par.init(rng) * 80).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    _, s = run(r.param(), {"q": SG.planar(p)})
    gq, = run(r.param_adjoint(), {"g": g, "s": s})
    assert rel(SG.unplanar(gq), par.image_vjp(p, g)) <= REL, f"seed {seed}"


@pytest.mark.parametrize("shape", SHAPES)
def test_spectrum_adjoint_by_dot_product(shape):
    seed = 13
    _, r = recipe(shape)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(r.planar_shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    fq, = run(r.spectrum(), {"q": q})
    fty, = run(r.spectrum_adjoint(), {"g": y})
    lhs, rhs = np.vdot(fq.astype(np.float64), y), np.vdot(q.astype(np.float64), fty)
    assert abs(lhs - rhs) <= DOT * np.linalg.norm(fq) * np.linalg.norm(y), f"seed {seed}: {lhs} != {rhs}"


def test_dft_matrices_give_exact_zeros_where_numpy_drops_parts():
    mh, ww = SG.dft_matrices(8, 6)
    assert not ww[1, 0].any() and not ww[1, 3].any()        # sin of column 0 and the Nyquist column
    assert not mh[8:, 0].any() and not mh[12, :8].any()    # sin of row 0 and of row h/2


def draws(ts, seed, in_hw, out_hw, count):
    rng = np.random.default_rng(seed)
    return [tf.sample(ts, rng, in_hw, out_hw) for _ in range(count)]


def test_warp_graphs_are_numpys_warp():
    seed = 14
    shape = (1, 3, 224, 224)
    _, r = recipe(shape)
    ts = tf.preset("standard", fill=GREY)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    fwd, back = r.warp(), r.warp_adjoint()
    kinds = set()
    for chain in draws(ts, seed, (224, 224), (224, 224), 24):
        f = SG.feeds(chain, (224, 224), (224, 224))
        kinds.add(len(chain.warps))
        v, = run(fwd, pick(fwd, {"x": x, **f}))
        assert rel(v, chain.forward(x)) <= REL, f"seed {seed}"
        gx, = run(back, pick(back, {"gv": g, **f}))
        assert rel(gx, chain.adjoint(g)) <= REL, f"seed {seed}"
    assert kinds == {1, 2}      # draws with and without a rotation were both checked


@pytest.mark.parametrize("ts, in_hw, out_hw", [
    (tf.preset("standard"), (40, 40), (40, 40)),               # rotations, constant boundary
    ([tf.Jitter(5), tf.Zoom(0.2)], (30, 36), (24, 20)),        # wrap boundary, a resize
    ([tf.RandomBox(0.4, 1.0), tf.RandomCrop(3)], (50, 50), (16, 16)),
])
def test_warp_adjoint_by_dot_product(ts, in_hw, out_hw):
    seed = 15
    _, r = recipe((2, 3, *in_hw), value=0.0, view=out_hw)
    fwd, back = r.warp(), r.warp_adjoint()
    rng = np.random.default_rng(seed)
    for chain in draws(ts, seed, in_hw, out_hw, 8):
        f = SG.feeds(chain, in_hw, out_hw, 2)
        assert f is not None
        x = rng.standard_normal((2, 3, *in_hw)).astype(np.float32)
        y = rng.standard_normal((2, 3, *out_hw)).astype(np.float32)
        ax, = run(fwd, pick(fwd, {"x": x, **f}))
        aty, = run(back, pick(back, {"gv": y, **f}))
        lhs, rhs = np.vdot(ax.astype(np.float64), y), np.vdot(x.astype(np.float64), aty)
        assert abs(lhs - rhs) <= DOT * np.linalg.norm(ax) * np.linalg.norm(y), \
            f"seed {seed}: {lhs} != {rhs}"


def test_transposed_taps_are_the_transpose():
    seed = 16
    rng = np.random.default_rng(seed)
    p_in, p_out = 30, 25
    idx = rng.integers(0, p_in, (4, p_out))
    wt = rng.uniform(-1, 1, (4, p_out)).astype(np.float32)
    wt[rng.random((4, p_out)) < 0.3] = 0.0
    dense = np.zeros((p_out, p_in))
    np.add.at(dense, (np.broadcast_to(np.arange(p_out), idx.shape), idx), wt)
    tidx, tw = SG.transposed_taps(idx, wt, p_in)
    dense_t = np.zeros((p_in, p_out))
    np.add.at(dense_t, (np.broadcast_to(np.arange(p_in), tidx.shape), tidx), tw)
    np.testing.assert_allclose(dense_t, dense.T, atol=1e-7, err_msg=f"seed {seed}")


# -- the loop -------------------------------------------------------------------------------
def loop_run(step, objective_of, steps=8, seed=0):
    model = ortviz.load(provider="cpu", threads=1, step=step)
    ctx = Context(model.engine, np.random.default_rng(seed), steps, targets=[130])
    par = recipes.parameterization(ctx, "fft", ctx.size)
    out = optimize(ctx, objective_of(ctx), par, recipes.transform_list(ctx, "standard"), Adam(0.05), steps)
    return out, ctx


def test_loop_on_graphs_is_the_numpy_loop_on_a_smooth_objective():
    """A quadratic objective (no kinks): the two loops agree to float32 rounding after 8 steps
    of the default recipe, rotations and all."""
    target = np.random.default_rng(17).standard_normal((1, 3, 224, 224)).astype(np.float32)

    def quadratic(ctx):
        def f(x):
            d = x - target
            return float(-0.5 * (d * d).sum()), -d
        return f

    (a, ca), (b, cb) = loop_run("numpy", quadratic), loop_run("graph", quadratic)
    assert cb.engine.step == "graph" and len(cb.history) == 8
    assert np.abs(a.image - b.image).max() <= 1e-5
    np.testing.assert_allclose(ca.history, cb.history, rtol=1e-5)


def test_loop_on_graphs_makes_the_numpy_loops_class_picture():
    """The class score through the bundle's graph: ReLU6's kinks and Adam's per-coefficient
    normalization turn any float32 rounding difference into visible ones within a few steps,
    so the graph loop is compared with the numpy loop's own spread under a 1e-6 relative
    perturbation of its gradient."""
    def score(ctx):
        return graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())

    def perturbed(ctx):
        f, rng = score(ctx), np.random.default_rng(18)

        def g(x):
            v, grad = f(x)
            return v, grad * (1 + 1e-6 * rng.standard_normal(grad.shape)).astype(np.float32)
        return g

    a, b, c = (loop_run(s, o)[0].image for s, o in
               (("numpy", score), ("graph", score), ("numpy", perturbed)))
    spread = np.abs(a - c).mean()
    assert 0 < np.abs(a - b).mean() <= 2 * spread, (np.abs(a - b).mean(), spread)


def test_graph_step_falls_back_to_numpy_for_other_recipes():
    """Pixels (normalized ascent) are not taken by the graphs: the loop runs them in numpy, and
    the same picture comes out whatever the engine's step."""
    outs = []
    for step in ("numpy", "graph"):
        model = ortviz.load(provider="cpu", threads=1, step=step)
        ctx = Context(model.engine, np.random.default_rng(3), 3, targets=[1])
        f = graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())
        par = P.Pixel((1, 3, *ctx.size), ctx.low, ctx.high)
        outs.append(optimize(ctx, f, par, tf.preset("light"), recipes.optimizer("pixel", 0), 3,
                             params=ctx.noise()).image)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_step_option_is_checked():
    with pytest.raises(ValueError, match="step must be one of auto, numpy, graph, got 'gpu'"):
        Engine(ortviz.api.default_bundle(), provider="cpu", step="gpu")
    assert Engine(ortviz.api.default_bundle(), provider="cpu").step in ("numpy", "graph")


def test_graph_objective_runs_merged_with_the_step_graphs():
    """The bundle's graph objective runs as one model with pre and post (one session run per
    iteration): the same iterations as pre, the graph and post run apart."""
    def score(ctx):
        return graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())

    def opaque(ctx):
        f = score(ctx)
        return lambda x: f(x)           # no .graph: pre, the objective and post run apart

    (a, ca), (b, cb) = loop_run("graph", score, steps=4), loop_run("graph", opaque, steps=4)
    assert any(k[0] == "stepgraph-fused" for k in ca.engine._sessions if isinstance(k, tuple))
    assert not any(k[0] == "stepgraph-fused" for k in cb.engine._sessions if isinstance(k, tuple))
    np.testing.assert_allclose(ca.history, cb.history, rtol=1e-5)
    assert np.abs(a.image - b.image).max() <= 1e-4


def test_cli_step_graph_runs_and_says_so(tmp_path):
    """``--step graph`` on the command line: the run completes on the step graphs and the sidecar
    records it; ``--step numpy`` records numpy."""
    import json

    from probes import invoke
    for step in ("graph", "numpy"):
        out = tmp_path / f"{step}.png"
        r = invoke("class-viz", "--iterations", 3, "--provider", "cpu", "--threads", 1,
                   "--step", step, "-o", out)
        assert r.exit_code == 0, r.output
        meta = json.loads(out.with_suffix(".png.json").read_text())
        assert meta["step"] == step and meta["status"] == "complete" and meta["timing"]["iterations"] == 3


def test_a_technique_parameter_named_step_clashes_with_the_common_option():
    from ortviz.bundle.graphs import FEATURE_ENERGY
    from ortviz.techniques.registry import check_declaration
    from ortviz.techniques.spec import Need, Param, Technique
    t = Technique(name="stepper", summary="x", needs=(Need(FEATURE_ENERGY),),
                  params=(Param("step", int, 1, "mine"),), start="photo",
                  default_layer="_blocks.1", run=lambda ctx, **kw: None)
    with pytest.raises(ValueError, match="clashes with the common option --step"):
        check_declaration(t)


def test_merged_step_on_an_opset_20_bundle_of_another_size():
    """The merged model takes the bundle's own opset (the dynamo exports import 20) and input
    size: the same losses as pre, the graph and post run apart."""
    from support import ARTIFACTS
    runs = []
    for wrap in (False, True):
        model = ortviz.load(ARTIFACTS / "small_resnet_dynamo", provider="cpu", threads=1, step="graph")
        ctx = Context(model.engine, np.random.default_rng(4), 3, targets=[1])
        f = graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())
        par = recipes.parameterization(ctx, "fft", ctx.size)
        out = optimize(ctx, (lambda x, f=f: f(x)) if wrap else f, par,
                       recipes.transform_list(ctx, "standard"), Adam(0.05), 3)
        fused = [k for k in model.engine._sessions if isinstance(k, tuple) and k[0] == "stepgraph-fused"]
        assert bool(fused) != wrap and np.isfinite(out.image).all()
        runs.append(ctx.history)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)


def test_loop_on_graphs_with_a_batch_of_two():
    """Each image of a batch-2 bundle its own: the rows of the taps repeat per image and channel.
    A smooth objective gives the numpy loop's pictures to float32 rounding."""
    from support import ARTIFACTS
    outs = []
    for step in ("numpy", "graph"):
        model = ortviz.load(ARTIFACTS / "small_resnet_batch2", provider="cpu", threads=1, step=step)
        ctx = Context(model.engine, np.random.default_rng(6), 6, targets=[1, 3])
        target = np.random.default_rng(19).standard_normal((2, 3, *ctx.size)).astype(np.float32)

        def f(x):
            return float(-0.5 * ((x - target) ** 2).sum()), target - x
        outs.append(optimize(ctx, f, recipes.parameterization(ctx, "fft", ctx.size),
                             recipes.transform_list(ctx, "standard"), Adam(0.05), 6).image)
    assert outs[0].shape[0] == 2 and np.abs(outs[0] - outs[1]).max() <= 1e-5


def test_merged_step_with_io_binding_keeps_the_state_in_buffers_and_gives_the_same_run(monkeypatch):
    """IO binding (GPU providers' default; asked for on the CPU here): the state ping-pongs
    between two buffer sets; the losses, the image and the final parameters are those of the
    unbound run."""
    from ortviz.render.stepgraph.fused import FusedStepper
    bound_runs = []
    run_bound = FusedStepper._run_bound
    monkeypatch.setattr(FusedStepper, "_run_bound",
                        lambda self, feeds: bound_runs.append(1) or run_bound(self, feeds))
    outs = []
    for bound in (False, True):
        engine = Engine(ortviz.api.default_bundle(), provider="cpu", threads=1, io_binding=bound,
                        step="graph")
        ctx = Context(engine, np.random.default_rng(7), 4, targets=[130])
        f = graph_objective(ctx, "class_score", "logits", class_weights=ctx.one_hot())
        opt = Adam(0.05)
        out = optimize(ctx, f, recipes.parameterization(ctx, "fft", ctx.size),
                       recipes.transform_list(ctx, "standard"), opt, 4)
        outs.append((ctx.history, out.image, out.params, opt.m))
    (h0, x0, p0, m0), (h1, x1, p1, m1) = outs
    assert len(bound_runs) == 4                       # the second run only, every iteration
    np.testing.assert_allclose(h0, h1, rtol=1e-6)
    assert np.abs(x0 - x1).max() <= 1e-6 and np.abs(p0 - p1).max() <= 1e-6
    assert np.abs(m0 - m1).max() <= 1e-6 and np.abs(m1).max() > 0
