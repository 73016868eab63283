"""Op coverage: every op form of tests/opnets.py (torch modules through the TorchScript
exporter, and op forms only an ONNX file has) exported, lowered, and its logits graph's gradient
(class scores and log-softmax at once) checked against the training build's graph, torch float64 autograd (which
also checks the loss, so the forward rewrites of ortviz/export/rewrites.py compute what the
original op did) and a central finite difference.
"""

import pytest

from ortviz.bundle.reader import Bundle
from ortviz.export.frontends import from_torch
from ortviz.export.pipeline import PREPROCESSING, ExportOptions, export_model
from ortviz.techniques.registry import techniques

from gradcheck import check_against_torch, check_against_training_build, check_default_domain_only, check_finite_differences
from opnets import CASES, DYNAMO_OP_TYPES, ONNX_CASES, OP_TYPES, SIZE, onnx_opnet, opnet
from support import ARTIFACTS

# The installed techniques; with layers="" only the logits graph (and any logits objective a
# plugin declares) is built.
TECHNIQUES = techniques()


def export_case(name: str, exporter: str = "torchscript"):
    if exporter == "onnx":
        model, net = onnx_opnet(name)
    else:
        net = opnet(name)
        model = from_torch(net, SIZE, exporter=exporter)
    held = {n.op_type for n in model.graph.node}  # before the exporter touches the model
    opts = ExportOptions(name=f"op-{name}", source=f"tests/opnets.py:{name}", size=SIZE,
                         layers="", keep_raw=True, **PREPROCESSING["imagenet"])
    path, graphs = export_model(model, ARTIFACTS / "ops" / f"{name}_{exporter}", opts,
                                TECHNIQUES, force=True)
    return net, Bundle.open(path), graphs, held


def test_every_case_names_its_op_types():
    assert set(OP_TYPES) == set(CASES) | set(ONNX_CASES)


@pytest.mark.parametrize("name,exporter", [(c, e) for c in CASES for e in ("torchscript", "dynamo")]
                         + [(c, "onnx") for c in ONNX_CASES])
def test_op_gradient_matches_torch(name, exporter):
    net, bundle, graphs, held = export_case(name, exporter)
    label = f"op {name} ({exporter})"
    want = (DYNAMO_OP_TYPES if exporter == "dynamo" else OP_TYPES)[name]
    assert want <= held, f"{label}: the source model lacks {want - held} ({sorted(held)})"
    check_default_domain_only(bundle, label)
    check_against_training_build(bundle, graphs, label)
    check_against_torch(net, bundle, label)
    check_finite_differences(net, bundle, "logits", "logits", label, seeds=range(1))
