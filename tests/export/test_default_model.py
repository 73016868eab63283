"""The committed EfficientNet-Lite0 bundle's gradients against torch float64 autograd on the
same network and weights (from the registry packages)."""

import numpy as np
import onnxruntime as ort
import pytest
from tolerances import TOL_TORCH, rel_err
from conftest import HERE
from reference import loss_and_grad

from ortviz.bundle import Bundle
from ortviz.export.zoo import efficientnet_lite0



@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0(), Bundle.open(HERE.parent / "models" / "efficientnet-lite0")


@pytest.mark.parametrize("objective,layer", [("logits", "logits"), ("features", "_blocks.0"),
                                             ("features", "_blocks.5"), ("features", "_blocks.10"),
                                             ("features", "_blocks.15")])
def test_default_bundle_gradients_match_torch(lite0, objective, layer):
    net, bundle = lite0
    entry = bundle.graph(objective, layer)
    seed = 11
    rng = np.random.default_rng(seed)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in entry.inputs.items()}
    image = feeds.pop("image")
    sess = ort.InferenceSession(str(bundle.path_of(entry.file)), providers=["CPUExecutionProvider"])
    _, grad = sess.run(["loss", entry.outputs["grad"]], {"image": image, **feeds})
    _, ref = loss_and_grad(net, objective, layer, image, feeds)
    err = rel_err(grad, ref)
    assert err <= TOL_TORCH, f"{entry.file} seed={seed}: rel err {err:.2e} vs torch float64"
