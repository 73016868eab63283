"""Feature visualization of one unit at every layer, on the embedded bundle: dead ReLU6 units
escape their zero gradient through the pre-activation warm-up or are reported ``blank``; the
negative picture; the diversity set (its term's gradient against float64 finite differences,
and through the graphs against finite differences of the whole objective); the transparency
map as the PNG's alpha; and their bad inputs on the CLI."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ortviz.cli import app
from ortviz.objective import algebra as A
from ortviz.objective.diversity import Diverse, flat, gram_diversity, unflat
from ortviz.objective.preactivation import source, surrogate

pytestmark = pytest.mark.runtime


def dead_channels(model, n, margin=0.5):
    """_swish_1 channels off everywhere, by a margin, near the mid-grey start of every recipe:
    their pre-activation (_conv_head) stays below -margin at every position of grey + noise."""
    x = (np.random.default_rng(0).standard_normal(model.engine.image_shape) * 0.1).astype(np.float32)
    t = "/_conv_head/Conv_output_0"
    pre = model.engine.forward(x, [t])[t][0]
    return [int(c) for c in np.flatnonzero(pre.reshape(pre.shape[0], -1).max(axis=1) < -margin)[:n]]


def test_pre_activation_layers_of_the_default_bundle(model):
    b = model.bundle
    assert source(b, "_swish") == ("_conv_stem", False)
    assert source(b, "_swish_1") == ("_conv_head", False)
    assert source(b, "_avg_pooling") == ("_conv_head", True)
    assert source(b, "_blocks.10") is None and source(b, "_conv_head") is None
    s = surrogate(b, A.neuron("_avg_pooling", 7) + 2 * A.channel("_swish_1", 3) + A.channel("_blocks.10", 1))
    assert s.text() == "_conv_head:7 + 2*_conv_head:3"   # the pooled neuron is its channel
    assert surrogate(b, A.channel("_blocks.10", 1)) is None


def test_dead_unit_rises_with_the_warm_up_and_is_blank_without(model):
    """_swish_1 channels off everywhere at the start: without the warm-up the run never moves
    (status blank, flat grey); with it the channel turns on, rises and the picture is not flat."""
    c = dead_channels(model, 1)[0]
    off = model.feature_visualization(f"_swish_1:{c}", iterations=12, warm_up=False)
    assert off.status.startswith("blank: _swish_1:") and "no gradient in any of 12" in off.status
    assert off.meta["status"] == off.status and off.history[-1] == off.history[0] == 0.0
    assert off.image.astype(float).std() < 8
    on = model.feature_visualization(f"_swish_1:{c}", iterations=12)
    assert on.status == "complete", on.status
    assert on.history[-1] > on.history[0] and on.image.astype(float).std() > 8
    assert 1 <= on.meta["warm_up_steps"] < 12


def test_dead_unit_in_a_diversity_set_warms_up_before_the_term(model):
    c = dead_channels(model, 1)[0]
    ps = model.feature_visualization(f"_swish_1:{c}", iterations=8, diversity=2)
    assert [p.status for p in ps] == ["complete", "complete"]
    assert all(p.meta["warm_up_steps"] >= 1 for p in ps) and ps[0].history[-1] > 0


def test_blank_on_the_cli_is_one_line_exit_0_and_in_the_sidecar(tmp_path, model):
    c = dead_channels(model, 1)[0]
    out = tmp_path / "b.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", f"_swish_1:{c}", "--iterations", "3",
                                 "--no-warm-up", "--provider", "cpu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sum(l.startswith("blank: ") for l in r.output.splitlines()) == 1, r.output
    assert "Traceback" not in r.output
    meta = json.loads((tmp_path / "b.png.json").read_text())
    assert meta["status"].startswith("blank: ") and meta["params"]["warm_up"] is False


def test_negative_of_a_unit_that_is_off_descends_its_pre_activation(model):
    """A dead _swish_1 channel is already at its minimum (0): its negative picture is what
    drives its pre-activation lowest, not a blank start; without the warm-up it is blank."""
    c = dead_channels(model, 1)[0]
    p = model.feature_visualization(f"_swish_1:{c}", iterations=12, negative=True)
    assert p.status == "complete" and p.meta["warm_up_steps"] == 12
    assert p.image.astype(float).std() > 8
    t = "/_conv_head/Conv_output_0"
    start = (np.random.default_rng(0).standard_normal(model.engine.image_shape) * 0.1).astype(np.float32)
    pre = lambda x: float(model.engine.forward(x, [t])[t][0, c].mean())
    assert pre(p.result.x) < pre(start) - 1.0
    off = model.feature_visualization(f"_swish_1:{c}", iterations=4, negative=True, warm_up=False)
    assert off.status.startswith("blank: ")


def test_negative_descends_the_objective(model):
    p = model.feature_visualization("_blocks.10:5", iterations=16, negative=True)
    assert p.status == "complete" and p.meta["params"]["negative"] is True
    assert p.history[-1] < p.history[0] - 1.0, p.history
    pos = model.feature_visualization("_blocks.10:5", iterations=16)
    assert pos.history[-1] > p.history[-1] + 5.0


def test_diversity_term_gradient_against_float64_finite_differences():
    rng = np.random.default_rng(7)
    phi = rng.standard_normal((3, 4, 6))
    d, g, sim = gram_diversity(phi)
    h, num = 1e-6, np.zeros_like(phi)
    for idx in np.ndindex(phi.shape):
        up, down = phi.copy(), phi.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (gram_diversity(up)[0] - gram_diversity(down)[0]) / (2 * h)
    err = np.abs(num - g).max() / np.abs(g).max()
    assert err < 1e-6, f"seed 7, h=1e-6: relative max error {err:.3g} (tolerance 1e-6)"
    # the term itself, written out independently: pairwise cosines of the Gram matrices
    grams = [p @ p.T for p in phi]
    cos = [[float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)) for b in grams] for a in grams]
    assert np.allclose(sim, cos, atol=1e-12) and np.isclose(d, (np.sum(cos) - 3) / 3, atol=1e-12)
    x = rng.standard_normal((2, 5, 3, 3))
    assert np.array_equal(unflat(flat(x), x.shape), x)
    assert flat(rng.standard_normal((2, 6, 4))).shape == (2, 4, 6)   # tokens: channels last


def test_diverse_objective_gradient_through_the_graphs(model):
    """The whole diversity-set objective, sum_k obj(x_k) - w D(phi(x)), differentiated through
    the bundle's graphs (the term's dD/dphi fed as the features graph's W, its <W, phi> taken
    back out of the value) against central finite differences along random directions. On the
    stem convolution, linear in the image, so the differences have no ReLU kinks to cross."""
    obj = A.channel("_conv_stem", 3)
    w = 50.0
    div = Diverse(model.engine, obj, "_conv_stem", w)
    rng = np.random.default_rng(11)
    x = (0.5 * rng.standard_normal((3, 3, 224, 224))).astype(np.float32)
    bound = obj.bind(model)

    def total(z):
        phi = div.activations(z)
        return sum(bound(z[i:i + 1])[0] for i in range(3)) - w * gram_diversity(flat(phi))[0]

    value, grad = div(x)
    assert np.isclose(value, sum(bound(x[i:i + 1])[0] for i in range(3)), rtol=1e-5)
    alone = np.concatenate([bound(x[i:i + 1])[1] for i in range(3)])
    for trial in range(2):
        v = rng.standard_normal(x.shape).astype(np.float32)
        eps = 1e-2
        fd = (total(x + eps * v) - total(x - eps * v)) / (2 * eps)
        an = float((grad.astype(np.float64) * v).sum())
        part = an - float((alone.astype(np.float64) * v).sum())   # the diversity term's share
        assert abs(part) > 0.05 * abs(an), "the diversity term should matter in this check"
        assert abs(fd - an) <= 0.01 * abs(part) + 1e-4, \
            f"seed 11 direction {trial}, eps 1e-2: finite difference {fd:.6g}, analytic {an:.6g} " \
            f"(diversity share {part:.4g}; tolerance 1% of it)"


def test_diversity_set_differs_and_reports_its_similarity(tmp_path):
    out = tmp_path / "d.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "_blocks.10:5", "--iterations", "12",
                                 "--diversity", "2", "--diversity-weight", "100", "--provider", "cpu",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    metas = [json.loads((tmp_path / f"d-{k}.png.json").read_text()) for k in range(2)]
    a, b = (np.asarray(Image.open(tmp_path / f"d-{k}.png"), float) for k in range(2))
    assert np.abs(a - b).mean() > 10
    sim = metas[0]["diversity"]["gram_cosine_similarity"]
    assert len(sim) == 2 and sim[0][0] == pytest.approx(1) and sim[0][1] == sim[1][0] < 1
    assert metas[1]["diversity"]["index"] == 1 and metas[0]["diversity"]["layer"] == "_blocks.10"


def test_diversity_weight_lowers_the_similarity(model):
    """Same seed: the pictures' Gram matrices are less alike with the term than without."""
    sims = []
    for w in (0.0, 100.0):
        ps = model.feature_visualization("_blocks.10:5", iterations=16, diversity=2, diversity_weight=w,
                                         diversity_layer="_blocks.5")
        sims.append(ps[0].meta["diversity"]["gram_cosine_similarity"][0][1])
    assert sims[1] < sims[0] - 0.02, f"seed 0: similarity {sims[0]:.4f} without, {sims[1]:.4f} with"


def test_transparency_is_the_png_alpha(tmp_path):
    out = tmp_path / "t.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "_blocks.10:5@3,4", "--iterations", "6",
                                 "--transparency", "--provider", "cpu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    im = Image.open(out)
    assert im.mode == "RGBA"
    alpha = np.asarray(im)[..., 3].astype(float)
    # a neuron at (3, 4) of a 14x14 layer: its receptive field, top left, is what mattered
    assert alpha.max() == 255 and alpha.std() > 10
    assert alpha[:112, :112].mean() > alpha[112:, 112:].mean()


def test_a_diversity_set_checks_all_its_files_before_any_work(tmp_path):
    (tmp_path / "d-1.png").mkdir()   # a directory where the second picture goes
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "_blocks.10:5", "--iterations", "2",
                                 "--diversity", "2", "--provider", "cpu", "-o", str(tmp_path / "d.png")])
    assert r.exit_code == 2 and "d-1.png" in r.output and "Traceback" not in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d-1.png"]


@pytest.mark.parametrize("args,says", [
    (["--diversity", "0"], "--diversity must be positive"),
    (["--diversity", "17"], "--diversity must be at most 16"),
    (["--diversity", "2", "--diversity-layer", "_blocks.99"], "--diversity-layer: unknown layer"),
    (["--diversity-layer", "_blocks.99"], "--diversity-layer: unknown layer"),
    (["--diversity", "2", "--objective", "_blocks.9:1;_blocks.9:2"], "2 objectives"),
    (["--diversity-weight", "-1"], "--diversity-weight must not be negative"),
    (["--transparency", "-o", "{tmp}/t.jpg"], "--transparency needs an image format with an alpha"),
])
def test_bad_unit_options_are_one_line_exit_2_and_write_nothing(tmp_path, args, says):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "x.png")]
    r = CliRunner().invoke(app, ["feature-viz", "--iterations", "2", "--provider", "cpu"] + args)
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output, r.output
    assert not any(tmp_path.iterdir())


def test_the_pre_activation_walk_reads_each_bundle_not_a_reused_descriptor_path():
    """A bundle is read through /proc/self/fd/N, and N is reused once a bundle is let go: the
    walk must not answer for the default bundle from another bundle's graph that had the same
    path (it did, through a cache keyed by that path, and the warm-up failed in a full run)."""
    from ortviz.bundle.embedded import default_bundle
    from ortviz.bundle.reader import Bundle

    from support import ARTIFACTS

    other = Bundle.open(ARTIFACTS / "small_resnet_torchscript")
    path = str(other.forward_path)
    source(other, "layer1")  # reads (and keeps) the small network's graph
    other.close()
    lite0 = Bundle.open(default_bundle())
    if str(lite0.forward_path) != path:
        pytest.skip(f"the descriptor path was not reused here ({path})")  # a platform without /proc
    assert source(lite0, "_swish") == ("_conv_stem", False)
