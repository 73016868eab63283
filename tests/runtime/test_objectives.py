"""Objectives at run time on the embedded bundle (stock onnxruntime, no re-export): strings and
their one-line errors, the numpy (two-run) path and the format-1 names against the built-in
terms, a plugin objective against finite differences and end to end through the CLI, channel
visualizations that excite their channel most, several objectives in one batched run, and the
Python API. Gradients against torch float64 are checked in the export stage
(tests/export/test_objectives.py)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import ortviz
from ortviz.bundle.embedded import default_bundle
from ortviz.cli import app
from ortviz.engine.sessions import Engine
from ortviz.objective import algebra as A
from ortviz.objective.algebra import ObjectiveError
from ortviz.objective.text import parse

from support import ARTIFACTS

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def engine():
    return Engine(default_bundle(), provider="cpu", threads=2)


def _x(engine, seed, scale=0.5):
    return (scale * np.random.default_rng(seed).standard_normal(engine.image_shape)).astype(np.float32)


@pytest.mark.parametrize("text,want", [
    ("_blocks.10:5", "_blocks.10:5"),
    ("_blocks.9:61@3,4", "_blocks.9:61@3,4"),
    ("_blocks.9:61@c", "_blocks.9:61@c,c"),
    ("_blocks.10", "energy(_blocks.10)"),
    ("energy(_blocks.10, 5) / 2", "0.5*energy(_blocks.10, 5)"),
    ("class:flamingo", "class_log_prob(flamingo)"),
    ('class:"tiger shark" - 2*score:3', "class_log_prob(tiger shark) - 2*class_score(3)"),
    ("_blocks.9:61 + 0.5*_blocks.12:150 - class:flamingo",
     "_blocks.9:61 + 0.5*_blocks.12:150 - class_log_prob(flamingo)"),
    ("-(_blocks.9:3 + _blocks.9:4)", "-_blocks.9:3 - _blocks.9:4"),
])
def test_objective_strings_parse(engine, text, want):
    assert parse(text, engine.bundle).text() == want


@pytest.mark.parametrize("text,token,says", [
    ("_blocks.99:3", "_blocks.99:3", "unknown layer '_blocks.99' (did you mean _blocks.9"),
    ("_blocks.9:612", "_blocks.9:612", "layer _blocks.9 has 112 channels (0..111)"),
    ("_blocks.9:61 + class:flamingoo", "class:flamingoo", "unknown class 'flamingoo'"),
    ("_blocks.9:3@20,1", "_blocks.9:3@20,1", "14 positions on that axis"),
    ("_blocks.9:a", "a", "expected a channel number"),
    ("_blocks.9:61 +", None, "at the end"),
    ("foo(_blocks.9)", "foo(_blocks.9)", "unknown objective function 'foo'"),
    ("_blocks.9:1 _blocks.9:2", "_blocks.9:2", "expected + or -"),
])
def test_bad_objective_strings_are_one_line_at_the_token(engine, text, token, says):
    with pytest.raises(ObjectiveError) as err:
        parse(text, engine.bundle)
    msg = str(err.value)
    assert "\n" not in msg and says in msg, msg
    if token:
        assert f"at {token!r}" in msg, msg
    if "unknown layer" in says:
        assert "layers: _conv_stem, _swish, _blocks.0" in msg, msg


def test_bad_objective_on_the_cli_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "fv.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "_blocks.10:500", "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "112 channels" in lines[0], r.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text,token,says", [
    ("1e400*_blocks.10:5", "1e400*_blocks.10:5", "the number 1e400 is too large (it is inf"),
    ("-1e400*_blocks.10:5", "1e400*_blocks.10:5", "the number 1e400 is too large"),
    ("_blocks.10:5 * 1e400", "1e400", "the number 1e400 is too large"),
    ("_blocks.10:5 * 1e300 * 1e300", "1e300", "a weight of 1e+300 is past float32's range"),
    ("(1e30*_blocks.10:5) * 1e30", "1e30", "a weight of 1e+60 is past float32's range"),
    ("1e39*_blocks.10:5", "1e39*_blocks.10:5", "a weight of 1e+39 is past float32's range"),
    ("_blocks.10:5 / 1e-320", "1e-320", "finite number, not inf"),
    ("nan*_blocks.10:5", "nan*_blocks.10:5", "unknown layer 'nan'"),
    ("-inf*_blocks.10:5", "inf*_blocks.10:5", "unknown layer 'inf'"),
    ("_blocks.10:5; 1e400*_blocks.10:6", "1e400*_blocks.10:6", "the number 1e400 is too large"),
])
def test_weights_that_are_not_finite_in_float32_are_one_line_on_the_cli(tmp_path, text, token, says):
    """A weight that overflows (1e400 is inf as a float; a product past float32, the graphs'
    weights) is refused at its token, exit 2, before the run: not an unexpected TypeError."""
    out = tmp_path / "fv.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", text, "--iterations", "1",
                                 "--provider", "cpu", "-o", str(out)])
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert says in lines[0] and f"at {token!r}" in lines[0] and "unexpected" not in lines[0], lines[0]
    assert not list(tmp_path.iterdir())


def test_an_objective_scaled_past_float32_is_refused_in_the_api():
    with pytest.raises(OverflowError, match="past float32's range"):
        A.channel("_blocks.10", 5) * 1e30 * 1e30
    with pytest.raises(TypeError, match="finite number"):
        A.channel("_blocks.10", 5) * float("nan")

def test_objective_arithmetic(engine):
    a, b = A.channel("_blocks.9", 61), A.neuron("_blocks.12", 150)
    x = _x(engine, 1)
    la, ga = a.bind(engine)(x)
    lb, gb = b.bind(engine)(x)
    for obj, wl, wg in [(a + b, la + lb, ga + gb), (a - b, la - lb, ga - gb),
                        (3 * a / 2, 1.5 * la, 1.5 * ga), (-b, -lb, -gb), (sum([a, b]), la + lb, ga + gb)]:
        loss, grad = obj.bind(engine)(x)
        assert loss == pytest.approx(wl, rel=1e-5, abs=1e-6), obj.text()
        err = np.abs(grad - wg).max() / np.abs(wg).max()  # linear: same graphs, scaled weights
        assert err <= 1e-5, f"seed=1 {obj.text()}: rel err {err:.2e}"
    with pytest.raises(TypeError):
        a * b
    with pytest.raises(ZeroDivisionError):
        a / 0


def test_numpy_path_gives_the_built_in_gradient(engine):
    """A numpy objective written to equal channel(_blocks.10, 5) runs forward -> numpy -> the
    same graph with the same weights: the same loss and gradient."""
    def fn(feats):
        phi = feats["_blocks.10"]
        w = np.zeros(phi.shape)
        w[:, 5] = 1.0 / (phi.shape[2] * phi.shape[3])
        return float((w * phi).sum()), {"_blocks.10": w}

    x = _x(engine, 2)
    l1, g1 = A.channel("_blocks.10", 5).bind(engine)(x)
    l2, g2 = A.numpy_objective("mine", "_blocks.10", fn).bind(engine)(x)
    assert l2 == pytest.approx(l1, rel=1e-5)
    err = np.abs(g2 - g1).max() / np.abs(g1).max()
    assert err <= 1e-6, f"seed=2: rel err {err:.2e}"


def test_format_1_names_run_on_the_built_in_graphs(engine):
    """ctx.grad("feature_energy", ...) and friends (techniques written for format 1) give the
    values of the equivalent objective terms."""
    x = _x(engine, 3)
    t = np.random.default_rng(4).standard_normal((1, 112, 14, 14)).astype(np.float32)
    onehot = np.zeros((1, 1000), np.float32)
    onehot[0, 130] = 1
    pairs = [(engine.gradient("feature_energy", "_blocks.10")(x), A.energy("_blocks.10")),
             (engine.gradient("feature_distance", "_blocks.10")(x, target_features=t),
              A.distance("_blocks.10", t)),
             (engine.gradient("class_score", "logits")(x, class_weights=onehot), A.class_score(130)),
             (engine.gradient("class_log_softmax", "logits")(x, class_weights=onehot),
              A.class_log_prob("flamingo"))]
    for step, obj in pairs:
        loss, grad = obj.bind(engine)(x)
        assert step.loss == pytest.approx(loss, rel=1e-5), obj.text()
        err = np.abs(step.grad - grad).max() / np.abs(grad).max()
        assert err <= 1e-5, f"seed=3 {obj.text()}: rel err {err:.2e}"


def test_plugin_objective_gradient_and_value(engine):
    """The test plugin's Gram objective (numpy, quartic in phi): its dL/dphi against a central
    difference in float64 (step 1e-6, tolerance 1e-6 relative), and through the two-run path
    the bound loss is the plugin's value on the forward graph's features plus the built-in
    term's. (Through the network, the numpy path's gradient is checked against torch float64
    in tests/export/test_objectives.py; a float32 difference through the graphs is too noisy
    for a loss of ~3e2 whose directional derivative is ~5e-2.)"""
    import ortviz_gram

    from ortviz.objective.plugins import objective_plugins
    assert "gram" in objective_plugins(), "pip install -e tests/plugins/ortviz-saliency"
    rng = np.random.default_rng(7)
    phi = rng.standard_normal((1, 6, 4, 5))
    _, g = ortviz_gram.gram_energy(phi)
    for k in range(5):
        v = rng.standard_normal(phi.shape)
        h = 1e-6
        fd = (ortviz_gram.gram_energy(phi + h * v)[0] - ortviz_gram.gram_energy(phi - h * v)[0]) / (2 * h)
        ad = float((g * v).sum())
        assert abs(ad - fd) <= 1e-6 * max(abs(fd), 1.0), f"seed=7 direction {k}: {ad} vs {fd}"
    obj = parse("gram(_blocks.9) - 0.1*_blocks.9:3", engine.bundle)
    x = _x(engine, 5)
    loss, grad = obj.bind(engine)(x)
    feats = engine.features(x, "_blocks.9")
    want = ortviz_gram.gram_energy(feats)[0] - 0.1 * float(feats[0, 3].astype(np.float64).mean())
    assert loss == pytest.approx(want, rel=1e-5), "seed=5"
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_plugin_objective_end_to_end_through_the_cli(tmp_path):
    out = tmp_path / "g.png"
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "gram(_blocks.9) + _blocks.9:61",
                                 "--iterations", "4", "--provider", "cpu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "g.png.json").read_text())
    assert meta["technique"] == "feature-visualization" and meta["status"] == "complete"
    assert meta["params"]["objective"] == "gram(_blocks.9) + _blocks.9:61"
    assert meta["timing"]["iterations"] == 4
    first, final = meta["objective_first"], meta["final_objective"]
    assert np.isfinite(first) and np.isfinite(final) and final > first, (first, final)  # it climbed


def test_feature_viz_and_dream_cli(tmp_path):
    r = CliRunner().invoke(app, ["feature-viz", "--objective", "_blocks.10:5", "--iterations", "3",
                                 "--provider", "cpu", "-o", str(tmp_path / "fv.png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "fv.png").is_file() and (tmp_path / "fv.png.json").is_file()
    r = CliRunner().invoke(app, ["dream", "--objective", "_blocks.9:61 + 0.5*_blocks.12", "--iterations",
                                 "2", "--octaves", "1", "--max-side", "224", "--provider", "cpu",
                                 "-o", str(tmp_path / "d.png")])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "d.png.json").read_text())
    assert meta["params"]["objective"] == "_blocks.9:61 + 0.5*_blocks.12"
    r = CliRunner().invoke(app, ["dream", "--objective", "_blocks.9:999", "-o", str(tmp_path / "e.png")])
    assert r.exit_code == 2 and "112 channels" in r.output, r.output


@pytest.mark.parametrize("layer,channel", [("_blocks.10", 5), ("_blocks.10", 90), ("_blocks.5", 50)])
def test_channel_visualization_excites_its_channel_most(layer, channel):
    """Fixed seed: after 48 iterations (fft parameterization, standard transforms) the channel's
    mean activation is the largest of its layer's."""
    model = ortviz.load(provider="cpu", threads=2)
    p = model.feature_visualization(f"{layer}:{channel}", iterations=48, seed=0)
    assert p.status == "complete"
    tensor = next(l["tensor"] for l in model.bundle.layers if l["name"] == layer)
    mean = model.engine.forward(p.result.x, [tensor])[tensor][0].mean(axis=(1, 2))
    assert int(mean.argmax()) == channel, \
        f"seed=0 {layer}:{channel}: most excited is {int(mean.argmax())} ({mean.max():.3g} vs {mean[channel]:.3g})"


def test_python_api_objectives():
    model = ortviz.load(provider="cpu", threads=2)
    v = np.cos(np.arange(112))
    for obj in [A.direction("_blocks.10", v), A.neuron("_blocks.12", 150),
                A.channel("_blocks.9", 61) + 0.5 * A.channel("_blocks.12", 150) - A.class_log_prob("flamingo"),
                model.objective("_blocks.10:5")]:
        p = model.feature_visualization(obj, iterations=2, param="pixel")
        assert p.status == "complete" and p.image.shape == (224, 224, 3), obj.text()
        assert p.meta["params"]["objective"] == obj.text()
    loss, grad = A.channel("_blocks.10", 5).bind(model)(np.zeros(model.engine.image_shape, np.float32))
    assert np.isfinite(loss) and grad.shape == model.engine.image_shape


def test_several_objectives_in_one_batched_run(tmp_path):
    """A batch-2 test bundle (stage 1): two channel objectives, one per slot, in one run; each
    slot's image is written as its own result."""
    bundle = ARTIFACTS / "small_resnet_batch2"
    assert bundle.exists(), f"{bundle} missing: run the export stage first (make test)"
    out = tmp_path / "fv.png"
    r = CliRunner().invoke(app, ["feature-viz", "-m", str(bundle), "--objective", "layer3:1; layer3:2",
                                 "--iterations", "3", "--provider", "cpu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "fv-0.png").is_file() and (tmp_path / "fv-1.png").is_file(), r.output
    model = ortviz.load(bundle, provider="cpu")
    pics = model.feature_visualization("layer3:1; layer3:2", iterations=3)
    assert len(pics) == 2 and all(p.status == "complete" for p in pics)
    assert not np.array_equal(pics[0].image, pics[1].image)
    r = CliRunner().invoke(app, ["feature-viz", "-m", str(bundle), "--objective", "layer3:1; layer3:2; layer3:3",
                                 "-o", str(tmp_path / "three.png")])
    assert r.exit_code == 2 and "batch of 2" in r.output, r.output


def test_broken_objective_plugins_are_skipped_with_their_reason(monkeypatch, engine):
    """A plugin that exits, raises or declares the wrong thing at load is skipped with one
    reason; the others, and the built-ins, keep working."""
    from ortviz._util import entrypoints
    from ortviz.objective import plugins as op

    class EP:
        def __init__(self, name, load):
            self.name, self.value, self._load, self.dist = name, f"fake:{name}", load, None

        def load(self):
            return self._load()

    good = op.ObjectivePlugin("twice", "2x a channel", lambda layer, c: 2 * A.channel(layer, int(c)))
    eps = [EP("exits", lambda: (_ for _ in ()).throw(SystemExit(3))),
           EP("raises", lambda: 1 / 0),
           EP("wrong", lambda: "not a plugin"),
           EP("channel", lambda: op.ObjectivePlugin("channel", "clash", lambda *a: None)),
           EP("twice", lambda: good)]
    monkeypatch.setattr(entrypoints.metadata, "entry_points", lambda group: eps if group == op.GROUP else [])
    found = {p.name: p for p in op.discover()}
    assert found["twice"].plugin is good
    for name, says in [("exits", "SystemExit"), ("raises", "ZeroDivisionError"),
                       ("wrong", "not an ObjectivePlugin"), ("channel", "built-in")]:
        assert found[name].plugin is None and says in found[name].error, found[name]
    assert parse("twice(_blocks.10, 5)", engine.bundle).text() == "2*_blocks.10:5"
    with pytest.raises(ObjectiveError, match="unknown objective function 'raises'"):
        parse("raises(_blocks.10)", engine.bundle)
