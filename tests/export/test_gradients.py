"""Lowered gradient graphs against the training build, torch float64 and finite differences.

Runs in the export environment. Writes the bundles and torch reference values to ARTIFACTS,
where the runtime stage (stock onnxruntime, no torch) checks them again.
"""

import onnx
import pytest

from ortviz.bundle.reader import Bundle
from ortviz.export.frontends import from_torch
from ortviz.export.pipeline import PREPROCESSING, ExportOptions, export_model
from ortviz.techniques.registry import techniques

from gradcheck import check_against_torch, check_against_training_build, check_default_domain_only, check_finite_differences, save_reference
from nets import small_resnet
from support import ARTIFACTS

SIZE = 32


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
    # the built-in graphs only: the installed plugins' format-1 objectives are served by them
    assert built == {("features", layer) for layer in layers} | {("logits", "logits")}


def test_graphs_hold_only_default_domain_ops(exported):
    exporter, _, bundle, _ = exported
    check_default_domain_only(bundle, exporter)


def test_lowered_matches_training_build(exported):
    exporter, _, bundle, graphs = exported
    check_against_training_build(bundle, graphs, exporter)


def test_gradients_match_torch_float64(exported):
    exporter, net, bundle, _ = exported
    reference = check_against_torch(net, bundle, exporter)
    # for the runtime stage: the same check on stock onnxruntime
    save_reference(ARTIFACTS / f"small_resnet_{exporter}.npz", reference)


@pytest.mark.parametrize("objective,layer", [("logits", "logits"), ("features", "layer2"),
                                             ("features", "pool"), ("features", "gap")])
def test_gradients_match_finite_differences(exported, objective, layer):
    exporter, net, bundle, _ = exported
    check_finite_differences(net, bundle, objective, layer, exporter)


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
