"""The three techniques on bundles of other architectures (written by the export stage), on
stock onnxruntime: a vision transformer's token layers are 3-D (N, T, D), not feature maps."""

import numpy as np
import pytest

import ortviz

from support import ARTIFACTS

VIT = ARTIFACTS / "family_vit_dynamo"


@pytest.fixture(scope="module")
def vit():
    assert VIT.exists(), f"{VIT} missing: run the export stage first (make test)"
    model = ortviz.load(VIT, provider="cpu")
    shapes = {l["name"]: l["shape"] for l in model.engine.bundle.layers}
    assert len(shapes["block1"]) == 3, f"ViT layer block1 is not a token sequence: {shapes}"
    return model


def test_feature_inversion_at_a_token_layer_reduces_the_feature_distance(vit):
    pic = vit.feature_inversion(layer="block1", iterations=40, seed=0)
    h = pic.history
    assert pic.status == "complete" and np.isfinite(h).all()
    assert h[-1] < 0.5 * h[0], f"seed=0: feature distance {h[0]:.4g} -> {h[-1]:.4g}"


def test_deepdream_at_a_token_layer_raises_its_energy(vit):
    # the defaults are tuned for EfficientNet-Lite0; this small random ViT needs larger steps
    pic = vit.deepdream(layer="block2", iterations=30, octaves=1, max_side=64, lr=0.2, seed=0)
    h = pic.history
    assert pic.status == "complete" and np.isfinite(h).all()
    assert h[-1] > 1.5 * h[0], f"seed=0: energy {h[0]:.4g} -> {h[-1]:.4g}"


def test_class_visualization_raises_the_target_probability(vit):
    # a random ViT's logits are nearly flat (log p of every class near -2.3): a small rise;
    # the pixel recipe (normalized ascent, jitter), whose step size suits this small model
    pic = vit.class_visualization(3, iterations=40, octaves=1, lr=0.3, seed=0, param="pixel",
                                  transforms="light", objective="log-softmax")
    h = pic.history  # log-softmax of class 3
    assert pic.status == "complete" and h[-1] > h[0] + 0.2, f"seed=0: log p {h[0]:.3f} -> {h[-1]:.3f}"
