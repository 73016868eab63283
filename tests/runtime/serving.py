"""Helpers for the ``ortviz serve`` tests: a server in a thread, raw HTTP requests."""

from __future__ import annotations

import base64
import http.client
import shutil
import threading
from contextlib import contextmanager

import numpy as np
import pytest

from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.reader import Bundle
from ortviz.serve import Site, make_server

TIMEOUT_MS = 240_000


@contextmanager
def running(site: Site | None = None):
    """A server for ``site`` (default: the embedded bundle) on a free port; yields its base URL."""
    site = site or Site(Bundle.open(default_bundle()), sample())
    server = make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            skip_length: bool = False):
    """``(status, headers, body)`` of one request with ``path`` sent as it is (no normalizing)."""
    host, port = base.rsplit("//", 1)[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        c.putrequest(method, path, skip_accept_encoding=True, skip_host="Host" in (headers or {}))
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None and not skip_length:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        if body:
            try:
                c.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass          # the server refused before reading it
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("headless Chromium is not installed: apt-get install -y chromium "
                    "(Debian's package; scripts/envs.sh browser, which .ci/run runs)")
    return path


@contextmanager
def launch():
    """Headless Chromium (the system's) under Playwright; fails saying what to install."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: it is in the test extra (pip install -e '.[cpu,test]')")
    path = chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser):
        self.page = browser.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, url: str) -> str:
        self.page.goto(url)
        self.page.wait_for_function("document.body.dataset.status === 'done' || document.body.dataset.status === 'ready'"
                                    " || document.body.dataset.status.startsWith('error')", timeout=TIMEOUT_MS)
        return self.page.evaluate("document.body.dataset.status")

    def close(self):
        self.page.close()


GRADIENT = """async ([text, data, shape]) => {
  const api = window.ortvizApi, e = api.engine;
  const raw = atob(data), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const o = await e.objective(text);
  const r = await e.gradient(o, new api.ort.Tensor("float32", new Float32Array(bytes.buffer), shape));
  const out = new Uint8Array(r.grad.buffer, r.grad.byteOffset, r.grad.byteLength);
  let s = "";
  for (let i = 0; i < out.length; i += 32768) s += String.fromCharCode.apply(null, out.subarray(i, i + 32768));
  return {loss: r.loss, grad: btoa(s)};
}"""


def gradient_parity(page, model, text: str, seed: int = 20261206, tol: float = 1e-4) -> float:
    """The page's gradient of ``text`` on a fixed input against ``model``'s engine, to ``tol``
    relative (max-abs difference over max-abs gradient); returns that difference."""
    from ortviz.objective.bind import Bound
    from ortviz.objective.text import parse
    shape = model.engine.image_shape
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    loss, grad = Bound(model.engine, [parse(text, model.bundle)])(x)
    got = page.page.evaluate(GRADIENT, [text, base64.b64encode(x.tobytes()).decode(), list(shape)])
    g = np.frombuffer(base64.b64decode(got["grad"]), np.float32).reshape(shape).astype(np.float64)
    rel = np.abs(g - grad).max() / np.abs(grad).max()
    assert rel <= tol, f"{text}: page gradient differs by {rel:.2e} of max |g| (seed {seed})"
    assert abs(got["loss"] - loss) <= tol * max(1.0, abs(loss)), (text, got["loss"], loss, seed)
    return rel
