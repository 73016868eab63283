"""``ortviz serve`` on the export stage's bundles (not only the embedded one): a batch-2 ResNet
and a ViT (LayerNorm, softmax attention and GELU in its gradient graphs), in headless Chromium:
the contract URL runs both techniques to ``done`` with no console error, and on the ViT the
page's gradients of the logits graph and of a token layer's features graph equal the engine's to
1e-4 relative (onnxruntime-web's WebAssembly kernels on other operators than the default
model's)."""

from __future__ import annotations

import pytest
from serving import Page, gradient_parity, launch, running

from ortviz.api import load as load_model
from ortviz.bundle.embedded import sample
from ortviz.bundle.reader import Bundle
from ortviz.serve import Site

from support import ARTIFACTS

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


@pytest.mark.parametrize("name", ["small_resnet_batch2", "family_vit_onnx"])
def test_other_bundles_run_both_techniques_in_the_page(browser, name):
    page = Page(browser)
    with running(Site(Bundle.open(ARTIFACTS / name), sample())) as base:
        for technique in ("deepdream", "feature-viz"):
            status = page.open(f"{base}/?technique={technique}&iterations=2&seed=1&run=1")
            assert status == "done", (name, technique, status, page.errors)
            r = page.page.evaluate("window.ortvizResult")
            assert len(r["objective"]) == 2 and r["provider"] == "wasm", r
    assert page.errors == [], page.errors
    page.close()


@pytest.mark.parametrize("text", ["class:0", "block1:3"])
def test_the_page_gradient_equals_the_engine_gradient_on_a_vit(browser, text):
    bundle = ARTIFACTS / "family_vit_onnx"
    page = Page(browser)
    with running(Site(Bundle.open(bundle), sample())) as base:
        assert page.open(f"{base}/") == "ready", page.errors
        gradient_parity(page, load_model(bundle, threads=1), text)
    assert page.errors == []
    page.close()
