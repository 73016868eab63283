"""Bundles on stock onnxruntime (runtime environment: no torch, no training build).

The committed default bundle, and the bundles the export stage wrote with torch float64
reference gradients beside them.
"""

import importlib.util
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.reader import Bundle, BundleError
from ortviz.engine.sessions import Engine
from ortviz.render.modelspace import to_model
from ortviz.run.imagefiles import load_image

from support import ARTIFACTS
from tolerances import TOL_TORCH, rel_err


def test_this_environment_is_the_stock_runtime():
    assert importlib.util.find_spec("torch") is None, "torch must not be installed here"
    assert importlib.util.find_spec("onnxruntime.training") is None, "training build present"
    assert not hasattr(ort.capi._pybind_state, "GradientGraphBuilder")


def test_default_bundle_hashes_hold():
    b = Bundle.open(default_bundle())  # verifies every sha256 and that nothing is extra
    assert set(b.manifest["files"]) >= {"forward.onnx", "weights.bin"}
    assert len(b.graphs()) == 1 + len(b.layers)  # format 2: logits + features per layer


@pytest.mark.parametrize("photo,label", [("chelsea.png", 285), ("coffee.png", 967)])
def test_default_bundle_classifies_the_sample_photos(photo, label):
    engine = Engine(default_bundle(), provider="cpu")
    pre = engine.bundle.manifest["preprocessing"]
    x = to_model(load_image(sample(photo)), pre["mean"], pre["std"], size=224)
    assert int(engine.logits(x).argmax()) == label


def test_no_graph_of_the_default_bundle_holds_a_subnormal_constant():
    """Hardware that flushes subnormals to zero (WebGPU, GPUs in flush-to-zero mode) reads a
    subnormal constant as 0: the ReLU6 masks' bound 1e-45 let dead units through there (wrong
    gradients in the browser's WebGPU). Every constant is 0 or a normal float."""
    b = Bundle.open(default_bundle())
    tiny = np.finfo(np.float32).tiny
    for name in sorted(b.manifest["files"]):
        if not name.endswith(".onnx"):
            continue
        m = onnx.load(str(b.root / name), load_external_data=False)
        tensors = [t for t in m.graph.initializer if not t.external_data] + [
            a.t for n in m.graph.node for a in n.attribute if a.type == a.TENSOR]
        for t in tensors:
            if t.data_type != onnx.TensorProto.FLOAT:
                continue
            a = onnx.numpy_helper.to_array(t)
            bad = (a != 0) & (np.abs(a) < tiny)
            assert not bad.any(), f"{name}: {t.name or 'a Constant'} holds {a[bad][:3]}"


def test_every_default_graph_runs_on_stock_onnxruntime():
    engine = Engine(default_bundle(), provider="cpu", threads=2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(engine.image_shape).astype(np.float32)
    for g in engine.bundle.graphs():
        model = onnx.load(str(engine.bundle.path_of(g.file)), load_external_data=False)
        assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), g.file
        extra = {k: rng.standard_normal(v).astype(np.float32) for k, v in g.inputs.items()
                 if k != engine.image_name}
        step = engine.gradient(g.objective, g.layer)(x, **extra)
        assert np.isfinite(step.loss) and step.grad.shape == x.shape, g.file
        assert np.isfinite(step.grad).all() and np.abs(step.grad).max() > 0, f"{g.file}: zero gradient"


# The export stage's bundles with torch float64 references (tests/export/test_gradients.py and
# test_families.py): the same gradients again, on stock onnxruntime through the engine.
EXPORTED = ([f"small_resnet_{e}" for e in ("torchscript", "dynamo")]
            + [f"family_{f}_{e}" for f in ("vgg", "inception", "mobilenetv3", "squeezenet", "vit")
               for e in ("torchscript", "dynamo", "onnx")])


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_bundles_match_torch_on_stock_onnxruntime(name):
    ref_path = ARTIFACTS / f"{name}.npz"
    assert ref_path.exists(), f"{ref_path} missing: run the export stage first (make test)"
    ref = np.load(ref_path)
    engine = Engine(ARTIFACTS / name, provider="cpu")
    exporter = name
    checked = 0
    for g in engine.bundle.graphs():
        keys = {k.split("::")[1] for k in ref.files if k.startswith(g.file + "::")}
        inputs = {k: ref[f"{g.file}::{k}"] for k in keys - {"image", "grad", "loss"}}
        step = engine.gradient(g.objective, g.layer)(ref[f"{g.file}::image"], **inputs)
        want = ref[f"{g.file}::grad"]
        err = rel_err(step.grad, want)
        assert err <= TOL_TORCH, f"{g.file} ({exporter}): rel err {err:.2e} vs torch float64"
        checked += 1
    assert checked == len(engine.bundle.graphs()) == len({k.split("::")[0] for k in ref.files})
    assert checked == 7 or not name.startswith("small_resnet")  # logits + features at 6 layers


def test_tampered_missing_and_extra_files_are_refused(tmp_path):
    src = ARTIFACTS / "small_resnet_torchscript"
    for case in ("tamper", "missing", "extra", "version"):
        b = tmp_path / case
        shutil.copytree(src, b)
        if case == "tamper":
            data = bytearray((b / "weights.bin").read_bytes())
            data[100] ^= 0xFF
            (b / "weights.bin").write_bytes(bytes(data))
            expect = "weights.bin does not match its sha256"
        elif case == "missing":
            next(b.glob("grad.*.onnx")).unlink()
            expect = "is missing"
        elif case == "extra":
            (b / "surprise.onnx").write_bytes(b"x")
            expect = "does not list: surprise.onnx"
        else:
            text = (b / "manifest.json").read_text().replace('"format_version": 2', '"format_version": 99')
            (b / "manifest.json").write_text(text)
            expect = "format version 99 is not supported"
        with pytest.raises(BundleError, match=expect):
            Bundle.open(b)


def test_io_binding_path_gives_the_plain_path_results():
    """The IO-binding path (default on GPU providers) exercised on the CPU: same values, inputs
    that change between calls are re-uploaded, and returned gradients are not overwritten."""
    plain = Engine(default_bundle(), provider="cpu", threads=2)
    bound = Engine(default_bundle(), provider="cpu", threads=2, io_binding=True)
    rng = np.random.default_rng(5)
    for objective, layer, name, shape in [("class_score", "logits", "class_weights", (1, 1000)),
                                          ("feature_distance", "_blocks.3", "target_features", (1, 40, 28, 28))]:
        extra = rng.standard_normal(shape).astype(np.float32)
        kept = []
        for k in range(3):
            x = rng.standard_normal(plain.image_shape).astype(np.float32)
            extra[0, k] += 1.0  # changed in place between calls
            a = plain.gradient(objective, layer)(x, **{name: extra})
            b = bound.gradient(objective, layer)(x, **{name: extra})
            assert a.loss == pytest.approx(b.loss, rel=1e-6), f"seed=5 {objective} call {k}"
            assert np.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7), f"seed=5 {objective} call {k}"
            kept.append((a.grad, b.grad))
        for a_grad, b_grad in kept:
            assert np.allclose(a_grad, b_grad, rtol=1e-5, atol=1e-7), "a later call overwrote a gradient"
