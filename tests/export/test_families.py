"""Model families (tests/families.py: VGG, Inception, MobileNetV3, SqueezeNet, ViT) through every
front end: torch's TorchScript and dynamo exporters, and the network's own ONNX file (dynamic
batch axis, other input and output names) loaded as `ortviz export onnx` would.

Each (family, front end) is exported once, with the training build's graphs kept; its graphs are
checked for default-domain ops only, against the training build, against torch float64
autograd (references saved to ARTIFACTS for the runtime stage) and against central finite
differences. An export the exporter cannot do fails every test of its case with the exporter's
one-line error.
"""

from dataclasses import dataclass

import pytest
import torch

from ortviz.bundle.reader import Bundle
from ortviz.export.frontends import from_torch, load_onnx
from ortviz.export.pipeline import PREPROCESSING, ExportOptions, export_model
from ortviz.techniques.registry import techniques

from families import FAMILIES, LAYERS
from gradcheck import check_against_torch, check_against_training_build, check_default_domain_only, check_finite_differences, save_reference
from support import ARTIFACTS

FRONTENDS = ("torchscript", "dynamo", "onnx")
CASES = [(family, frontend) for family in FAMILIES for frontend in FRONTENDS]

# The layer each family's feature-energy gradient is checked at by finite differences: one whose
# gradient passes the family's characteristic ops (ceil-mode pools; parallel branches and
# concatenation; squeeze-excitation and hard-swish; fire modules; attention and LayerNorm).
FD_LAYER = {"vgg": "stage4", "inception": "block2", "mobilenetv3": "block3",
            "squeezenet": "fire3", "vit": "block1"}
FD_SEEDS = range(3)
# Against torch float64, tighter than gradcheck's 1e-4: these nets are small enough for their
# float32 graphs to agree to ~1e-6, and at 1e-4 the ViT's GELU taken in the wrong form (erf for
# tanh, in either block) passed by a margin of 1.4x; at 1e-5 it fails by >= 14x.
TOL_TORCH_FAMILIES = 1e-5
# Central-difference step: these nets are deeper than tests/nets.py's ResNet and their input
# gradients small, so h=1e-4 crosses ReLU / max-pool kinks (VGG's class score at seed 200: the
# difference is off by 0.5% at h=1e-4 and agrees to 1e-7 relative at 1e-5 and 1e-6). float64
# round-off at 1e-5 is ~1e-11 of the loss.
FD_STEP = 1e-5


@dataclass
class Exported:
    family: str
    frontend: str
    net: torch.nn.Module
    bundle: Bundle
    graphs: list

    @property
    def label(self) -> str:
        return f"{self.family}/{self.frontend}"


def onnx_file(net, size: int, path) -> None:
    """The network as a model zoo would ship it: a dynamic batch axis, its own tensor names,
    the TorchScript exporter at opset 13 (LayerNorm and GELU come decomposed, HardSwish as
    HardSigmoid and Mul, the ViT's shapes computed at run time)."""
    torch.onnx.export(net, (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                      input_names=["data"], output_names=["prob_logits"],
                      dynamic_axes={"data": {0: "N"}, "prob_logits": {0: "N"}}, opset_version=13)


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{e}" for f, e in CASES])
def exported(request, tmp_path_factory):
    family, frontend = request.param
    factory, size = FAMILIES[family]
    net = factory()
    if frontend == "onnx":
        path = tmp_path_factory.mktemp(f"{family}-onnx") / f"{family}.onnx"
        onnx_file(net, size, path)
        model = load_onnx(path)
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N", family
    else:
        model = from_torch(net, size, exporter=frontend)
    opts = ExportOptions(name=f"{family}-{frontend}", source=f"tests/families.py:{family}",
                         size=size, keep_raw=True, **PREPROCESSING["imagenet"])
    path, graphs = export_model(model, ARTIFACTS / f"family_{family}_{frontend}", opts,
                                techniques(), force=True)
    return Exported(family, frontend, net, Bundle.open(path), graphs)


def _module_output_shapes(net, size: int) -> dict:
    """Shape of each top-level module's output in torch, for one image."""
    seen = {}
    def keep(name):
        return lambda module, args, out: seen.__setitem__(name, list(out.shape))

    hooks = [m.register_forward_hook(keep(name)) for name, m in net.named_children()]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size, dtype=next(net.parameters()).dtype))
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_layer_table_names_the_family_s_modules(exported):
    bundle = exported.bundle
    layers = [layer["name"] for layer in bundle.layers]
    assert layers == LAYERS[exported.family], f"{exported.label}: layer table {layers}"
    image = bundle.input["name"]
    assert image == ("data" if exported.frontend == "onnx" else "image"), exported.label
    size = FAMILIES[exported.family][1]
    assert bundle.input["shape"] == [1, 3, size, size], exported.label
    # the same maps as torch's (ceil-mode pools keep their partial windows)
    torch_shapes = _module_output_shapes(exported.net, size)
    for layer in bundle.layers:
        want = torch_shapes[layer["name"]]
        assert layer["shape"] == want, \
            f"{exported.label} {layer['name']}: shape {layer['shape']} vs torch {want}"
    built = {(g.objective, g.layer) for g in exported.graphs}
    missing = [("features", l) for l in layers if ("features", l) not in built]
    missing += [("logits", "logits")] if ("logits", "logits") not in built else []
    assert not missing, f"{exported.label}: graphs not built {missing}"


def test_graphs_hold_only_default_domain_ops(exported):
    check_default_domain_only(exported.bundle, exported.label)


def test_lowered_matches_training_build(exported):
    check_against_training_build(exported.bundle, exported.graphs, exported.label)


def test_gradients_match_torch_float64(exported):
    reference = check_against_torch(exported.net, exported.bundle, exported.label, tol=TOL_TORCH_FAMILIES)
    # for the runtime stage: the same check on stock onnxruntime
    save_reference(ARTIFACTS / f"family_{exported.family}_{exported.frontend}.npz", reference)


@pytest.mark.parametrize("objective", ["logits", "features"])
def test_gradients_match_finite_differences(exported, objective):
    layer = "logits" if objective == "logits" else FD_LAYER[exported.family]
    check_finite_differences(exported.net, exported.bundle, objective, layer, exported.label,
                             seeds=FD_SEEDS, h=FD_STEP)
