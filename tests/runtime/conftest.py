"""Fixtures the runtime stage's tests share (stock onnxruntime, no torch)."""

import pytest

import ortviz


@pytest.fixture(scope="module")
def model():
    """The embedded default bundle on the CPU provider, 2 threads."""
    return ortviz.load(provider="cpu", threads=2)
