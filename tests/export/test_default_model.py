"""The committed EfficientNet-Lite0 bundle's gradients against torch float64 autograd on the
same network and weights (from the registry packages)."""

import numpy as np
import onnxruntime as ort
import pytest

from ortviz.bundle.reader import Bundle

from reference import loss_and_grad
from support import EMBEDDED
from tolerances import TOL_TORCH, rel_err


@pytest.fixture(scope="module")
def lite0(lite0_net):
    return lite0_net, Bundle.open(EMBEDDED)


# ReLU6 has kinks at 0 and 6. Where the float64 network puts a pre-activation within float32's
# error of a kink (about 1e-6 here: 3.7e-7 relative at the logits), the float32 graph and the
# float64 reference may take different sides of it, and the gradients differ by 1e-3..0.4
# whatever the graph: at seeds 11-30 the bundle exported by torch's float32 BatchNorm fold
# failed for 6 seeds, the float64-folded one for 6 others, and both passed at every seed whose
# margin was >= 1e-6. So the check runs at the first seed from 11 whose image keeps every ReLU6
# input at least KINK_MARGIN from a kink in float64: there the gradient is defined to float32
# precision, and any error is the graph's.
KINK_MARGIN = 1e-6


def _kink_margin(net, image) -> float:
    import copy

    import torch

    n64 = copy.deepcopy(net).double()
    inputs = []
    for m in n64.modules():
        if isinstance(m, (torch.nn.ReLU6, torch.nn.Hardtanh)):
            m.register_forward_hook(lambda mod, i, o: inputs.append(i[0].detach()))
    with torch.no_grad():
        n64(torch.from_numpy(image).double())
    assert inputs, "no ReLU6 found: the margin would check nothing"
    return min(min(a.abs().min().item(), (a - 6).abs().min().item()) for a in inputs)


@pytest.fixture(scope="module")
def smooth_seed(lite0):
    net, bundle = lite0
    shape = bundle.graph("logits", "logits").inputs["image"]
    for seed in range(11, 111):
        image = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        if _kink_margin(net, image) >= KINK_MARGIN:
            return seed
    pytest.fail("no seed in 11..110 keeps the ReLU6 inputs off the kinks")


@pytest.mark.parametrize("objective,layer", [("logits", "logits"), ("features", "_blocks.0"),
                                             ("features", "_blocks.5"), ("features", "_blocks.10"),
                                             ("features", "_blocks.15")])
def test_default_bundle_gradients_match_torch(lite0, smooth_seed, objective, layer):
    net, bundle = lite0
    entry = bundle.graph(objective, layer)
    seed = smooth_seed
    rng = np.random.default_rng(seed)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in entry.inputs.items()}
    image = feeds.pop("image")
    sess = ort.InferenceSession(str(bundle.path_of(entry.file)), providers=["CPUExecutionProvider"])
    _, grad = sess.run(["loss", entry.outputs["grad"]], {"image": image, **feeds})
    _, ref = loss_and_grad(net, objective, layer, image, feeds)
    err = rel_err(grad, ref)
    assert err <= TOL_TORCH, f"{entry.file} seed={seed}: rel err {err:.2e} vs torch float64"
