"""``ortviz serve``'s page in headless Chromium (Debian's, driven by Playwright's Python package
with ``executable_path``: no browser download). The contract URL of issue 24 runs DeepDream and
a channel visualization to ``done`` with no console error; the page's gradients (onnxruntime-web,
WebAssembly) equal the Python engine's to 1e-4 relative on a fixed input; the transform draw and
the warp inputs made in JS equal ortviz.render.stepgraph.plans.feeds on the same draws; bad input gets
a message in the page. No Chromium is a failure that says how to install it (as the atlas's
browser test)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest
from serving import Page, gradient_parity, launch, running

from ortviz.api import load as load_model
from ortviz.render import transforms as tf
from ortviz.render.stepgraph import plans
from ortviz.serve.describe import transforms_of

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


@pytest.fixture(scope="module")
def base():
    with running() as url:
        yield url


@pytest.fixture()
def page(browser):
    p = Page(browser)
    yield p
    p.close()


@pytest.mark.parametrize("technique, objective, iterations", [
    ("deepdream", "", 2),
    ("feature-viz", "_blocks.10:5", 3),
])
def test_the_contract_url_runs_to_done_without_console_errors(base, page, technique, objective, iterations):
    status = page.open(f"{base}/?technique={technique}&objective={objective}&iterations={iterations}&seed=3&run=1")
    assert status == "done", (status, page.errors)
    assert page.errors == []
    r = page.page.evaluate("window.ortvizResult")
    assert r["provider"] == "wasm" and len(r["objective"]) == iterations, r
    assert all(np.isfinite(r["objective"])) and r["ms_per_iteration"] > 0 and r["threads"] >= 1, r
    # the objective climbs (DeepDream from the photo, a channel from noise)
    assert r["objective"][-1] > r["objective"][0], r
    assert page.page.evaluate("crossOriginIsolated") is True   # wasm threads had their headers


@pytest.mark.parametrize("text", ["class:flamingo", "_blocks.10:5"], ids=["logits", "features"])
def test_the_page_gradient_equals_the_engine_gradient(base, page, text):
    assert page.open(f"{base}/") == "ready", page.errors
    gradient_parity(page, load_model(threads=1), text)
    assert page.errors == []


class Scripted:
    """An rng whose ``integers`` hands out given values, for the same draw in Python and JS."""

    def __init__(self, values):
        self.values = list(values)

    def integers(self, lo, hi=None, size=None):
        take = [self.values.pop(0) for _ in range(size or 1)]
        return np.array(take) if size else take[0]


DRAW = """([transforms, values, hw, mode]) => {
  const d = window.ortvizApi.draw, vs = [...values];
  const rng = {integers: () => vs.shift()};
  const f = d.feeds(d.sample(transforms, rng, hw, hw), hw, hw, mode, 1);
  const out = {};
  for (const [k, [data, shape]] of Object.entries(f)) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let s = "";
    for (let i = 0; i < bytes.length; i += 32768) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
    out[k] = [btoa(s), data instanceof BigInt64Array ? "int64" : "float32", shape];
  }
  return out;
}"""


# (crop oy, crop ox, scale index, angle index, crop oy, crop ox): a rotation, none, extremes
@pytest.mark.parametrize("values", [(3, 5, 7, 2, 1, 4), (0, 8, 5, 10, 4, 0), (8, 0, 0, 20, 0, 4),
                                    (4, 4, 10, 0, 2, 2)])
def test_the_page_draw_makes_the_warp_inputs_python_makes(base, page, values):
    assert page.open(f"{base}/") == "ready", page.errors
    info = page.page.evaluate("fetch('api/bundle').then(r => r.json())")
    ts = transforms_of(SimpleNamespace(manifest={"preprocessing": {"mean": info["mean"], "std": info["std"]}}))
    hw = tuple(info["input"]["shape"][2:])
    want = plans.feeds(tf.sample(ts, Scripted(values), hw, hw), hw, hw, 1)
    got = page.page.evaluate(DRAW, [info["feature_viz"]["transforms"], list(values), list(hw),
                                    info["feature_viz"]["boundary"]])
    assert set(got) == set(want)
    for k, w in want.items():
        data, dtype, shape = got[k]
        a = np.frombuffer(base64.b64decode(data), dtype).reshape(shape)
        assert a.shape == w.shape, (k, a.shape, w.shape)
        if w.dtype.kind == "i":
            np.testing.assert_array_equal(a, w, err_msg=f"{k} for the draw {values}")
        else:
            np.testing.assert_allclose(a, w, rtol=0, atol=1e-6, err_msg=f"{k} for the draw {values}")


@pytest.mark.parametrize("query, says", [
    ("technique=feature-viz&objective=_blocks.10:5000&iterations=2&run=1", "channel 5000 is out of range"),
    ("technique=feature-viz&objective=class:nonesuch-thing&iterations=2&run=1", "nonesuch-thing"),
    ("technique=painting&run=1", "technique must be one of"),
    ("technique=deepdream&iterations=many&run=1", "iterations must be a whole number"),
    ("technique=deepdream&iterations=0&run=1", "iterations must be 1.."),
    ("technique=deepdream&threads=0&run=1", "threads must be 1..16"),
])
def test_bad_input_gets_a_message_in_the_page(base, page, query, says):
    status = page.open(f"{base}/?{query}")
    assert status.startswith("error: ") and says in status, status
    assert says in page.page.text_content("#message")


def test_a_bad_photo_gets_a_message_in_the_page(base, page, tmp_path):
    assert page.open(f"{base}/") == "ready"
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"this is not a JPEG")
    page.page.set_input_files("#photo", str(bad))
    page.page.wait_for_function("document.body.dataset.status.startsWith('error')", timeout=30_000)
    assert "photo.jpg is not an image" in page.page.text_content("#message")


def test_an_atlas_channel_page_links_to_its_live_view(page):
    from urllib.parse import quote

    from atlas_support import load, small_site

    from ortviz.bundle.embedded import default_bundle, sample
    from ortviz.bundle.reader import Bundle
    from ortviz.serve import Site
    made = small_site()
    channel = load(made)["channels"][0]
    with running(Site(Bundle.open(default_bundle()), sample(), atlas=made)) as url:
        page.page.goto(f"{url}/atlas/{channel['page']}")
        link = page.page.wait_for_selector(".live a", timeout=60_000)
        assert link.get_attribute("href") == "/?technique=feature-viz&objective=" + quote(channel["objective"], safe="")
        link.click()
        page.page.wait_for_function("document.body.dataset.status === 'ready'", timeout=60_000)
        assert page.page.input_value("#objective") == channel["objective"]
        assert page.page.is_visible("text=atlas")
    assert page.errors == []


def test_download_gives_the_png_and_a_sidecar(base, page, tmp_path):
    from PIL import Image
    assert page.open(f"{base}/?technique=deepdream&iterations=1&seed=0&run=1") == "done"
    got = []
    page.page.on("download", lambda d: got.append(d))
    page.page.click("#download")
    for _ in range(100):
        if len(got) == 2:
            break
        page.page.wait_for_timeout(100)
    files = {}
    for d in got:
        files[d.suggested_filename] = tmp_path / d.suggested_filename
        d.save_as(files[d.suggested_filename])
    png = next(p for n, p in files.items() if n.endswith(".png"))
    side = files[png.name + ".json"]
    assert Image.open(png).size == (224, 224)
    meta = json.loads(side.read_text())
    assert meta["technique"] == "deepdream" and meta["model"]["name"] == "efficientnet-lite0", meta
    assert len(meta["objective_values"]) == 1 and meta["runtime"]["provider"] == "wasm", meta
