"""Lowered gradient graphs against the training build, torch float64 and finite differences.

Runs in the export environment. Writes the bundles and torch reference values to ARTIFACTS,
where the runtime stage (stock onnxruntime, no torch) checks them again.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import ARTIFACTS
from nets import small_resnet
from reference import directional_fd, loss_and_grad

from ortviz.bundle import Bundle
from ortviz.export.frontends import from_torch
from ortviz.export.pipeline import PREPROCESSING, ExportOptions, export_model
from ortviz.plugins import techniques

SIZE = 32
# float32 graph against float64 torch: |g - g_ref|max <= TOL * |g_ref|max
TOL_TORCH = 1e-4
# lowered against the unlowered training-build graph, both float32
TOL_RAW = 1e-5
# <g, v> against a central difference of the float64 torch loss
TOL_FD = 1e-3


def feeds_for(inputs: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in inputs.items()}


def rel_err(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-12))


def run_graph(model_or_path, feeds):
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feeds)))
    grad = next(v for k, v in out.items() if k.endswith("_grad"))
    return float(out["loss"]), grad


@pytest.fixture(scope="module", params=["torchscript", "dynamo"])
def exported(request):
    exporter = request.param
    net = small_resnet()
    model = from_torch(net, SIZE, exporter=exporter)
    opts = ExportOptions(name=f"small-resnet-{exporter}", source="tests/nets.py:small_resnet",
                         size=SIZE, keep_raw=True, **PREPROCESSING["imagenet"])
    path, graphs = export_model(model, ARTIFACTS / f"small_resnet_{exporter}", opts, techniques(),
                                force=True)
    return exporter, net, Bundle.open(path), graphs


def test_every_objective_and_layer_was_built(exported):
    _, _, bundle, graphs = exported
    layers = [l["name"] for l in bundle.layers]
    assert layers == ["stem", "pool", "layer1", "layer2", "layer3", "gap"]
    built = {(g.objective, g.layer) for g in graphs}
    for layer in layers:
        assert ("feature_energy", layer) in built and ("feature_distance", layer) in built
    assert ("class_score", "logits") in built and ("class_log_softmax", "logits") in built


def test_graphs_hold_only_default_domain_ops(exported):
    _, _, bundle, _ = exported
    for g in bundle.graphs():
        path = str(bundle.path_of(g.file))
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path, load_external_data=False)
        bad = [(n.domain, n.op_type) for n in model.graph.node if n.domain not in ("", "ai.onnx")]
        assert not bad, f"{g.file}: non-standard ops {bad}"
        assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}, g.file


def test_lowered_matches_training_build(exported):
    _, _, bundle, graphs = exported
    for k, g in enumerate(graphs):
        entry = bundle.graph(g.objective, g.layer)
        feeds = feeds_for(entry.inputs, seed=k)
        raw_loss, raw_grad = run_graph(g.raw, feeds)
        low_loss, low_grad = run_graph(str(bundle.path_of(entry.file)), feeds)
        err = rel_err(low_grad, raw_grad)
        assert err <= TOL_RAW, f"{entry.file} seed={k}: lowered vs raw rel err {err:.2e}"
        assert abs(low_loss - raw_loss) <= TOL_RAW * max(abs(raw_loss), 1.0), f"{entry.file} seed={k}"


def test_gradients_match_torch_float64(exported):
    exporter, net, bundle, _ = exported
    reference = {}
    for k, entry in enumerate(bundle.graphs()):
        feeds = feeds_for(entry.inputs, seed=100 + k)
        image = feeds.pop(bundle.input["name"])
        loss, grad = run_graph(str(bundle.path_of(entry.file)), {bundle.input["name"]: image, **feeds})
        ref_loss, ref_grad = loss_and_grad(net, entry.objective, entry.layer, image, feeds)
        err = rel_err(grad, ref_grad)
        assert err <= TOL_TORCH, f"{entry.file} ({exporter}) seed={100 + k}: rel err {err:.2e}"
        assert abs(loss - ref_loss) <= TOL_TORCH * max(abs(ref_loss), 1.0), f"{entry.file} seed={100 + k}"
        reference[entry.file] = dict(image=image, grad=ref_grad, loss=np.float64(ref_loss), **feeds)
    # for the runtime stage: the same check on stock onnxruntime
    np.savez(ARTIFACTS / f"small_resnet_{exporter}.npz",
             **{f"{f}::{k}": v for f, d in reference.items() for k, v in d.items()})


@pytest.mark.parametrize("objective,layer", [("class_score", "logits"), ("class_log_softmax", "logits"),
                                             ("feature_distance", "layer2"), ("feature_energy", "pool")])
def test_gradients_match_finite_differences(exported, objective, layer):
    _, net, bundle, _ = exported
    entry = bundle.graph(objective, layer)
    for seed in range(3):
        feeds = feeds_for(entry.inputs, seed=200 + seed)
        image = feeds.pop(bundle.input["name"])
        _, grad = run_graph(str(bundle.path_of(entry.file)), {bundle.input["name"]: image, **feeds})
        v = np.random.default_rng(300 + seed).standard_normal(image.shape)
        fd = directional_fd(net, objective, layer, image, feeds, v)
        ad = float((grad.astype(np.float64) * v).sum())
        assert abs(ad - fd) <= TOL_FD * max(abs(fd), 1e-3), \
            f"{entry.file} seed={200 + seed}: <g,v>={ad:.6g} vs central difference {fd:.6g}"


def test_weights_are_stored_once(exported):
    _, _, bundle, _ = exported
    files = bundle.manifest["files"]
    bins = [f for f in files if not f.endswith(".onnx")]
    assert bins == ["weights.bin"]
    for g in bundle.graphs():
        model = onnx.load(str(bundle.path_of(g.file)), load_external_data=False)
        for init in model.graph.initializer:
            assert len(init.raw_data) <= 16384 or init.data_location == onnx.TensorProto.EXTERNAL, \
                f"{g.file}: weight {init.name} copied into the graph"
    assert torch.__version__  # the reference side really is torch
