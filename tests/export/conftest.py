"""Fixtures the export stage's tests share (torch + onnxruntime-training)."""

import pytest


@pytest.fixture(scope="session")
def lite0_net():
    """The embedded classifier's torch network (float32, eval mode), as the bundle was made from."""
    from ortviz.export.zoo import efficientnet_lite0
    return efficientnet_lite0()
