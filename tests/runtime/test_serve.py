"""``ortviz serve``'s server without a browser: what it answers, and what it refuses (paths
outside its list, links out of the bundle, other methods, oversized bodies), over plain HTTP.
Default bundle; nothing here runs an iteration."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from serving import request, running

from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.reader import Bundle
from ortviz.objective.bind import Bound
from ortviz.objective.text import parse
from ortviz.serve import Site
from ortviz.serve.server import MAX_BODY, STATIC

from probes import subprocess_env

pytestmark = pytest.mark.runtime

ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


@pytest.fixture(scope="module")
def base():
    with running() as url:
        yield url


def _ok(base, path, ctype=None):
    status, headers, body = request(base, "GET", path)
    assert status == 200, (path, status, body[:200])
    for k, v in ISOLATION.items():
        assert headers.get(k) == v, (path, k, headers)
    if ctype:
        assert headers["Content-Type"].startswith(ctype), (path, headers["Content-Type"])
    return body


def test_the_page_its_assets_the_bundle_and_the_step_graphs_are_served_isolated(base):
    assert b'type="module"' in _ok(base, "/", "text/html")
    assert _ok(base, "/static/app.js", "text/javascript")
    wasm = _ok(base, "/static/vendor/ort/ort-wasm-simd-threaded.wasm", "application/wasm")
    assert wasm[:4] == b"\0asm"
    info = json.loads(_ok(base, "/api/bundle", "application/json"))
    manifest = Bundle.open(default_bundle()).manifest
    assert info["input"]["shape"] == manifest["input"]["shape"] and len(info["labels"]) == 1000
    for rel in ("weights.bin", "grad.logits__logits.onnx"):
        assert _ok(base, f"/bundle/{rel}") == (default_bundle() / rel).read_bytes()
    for name in ("param", "pre", "post"):
        assert _ok(base, f"/steps/{name}.onnx")[:2] == b"\x08\x08"      # ir_version 8: an ONNX model
    assert _ok(base, "/photo.png", "image/png") == sample().read_bytes()
    status, headers, body = request(base, "HEAD", "/static/app.js")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
    "/static/vendor/../../server.py", "/bundle/../manifest.json", "/bundle/%2e%2e%2f%2e%2e%2fserver.py",
    "/bundle/manifest.json", "/bundle//etc/passwd", "/bundle/%2Fetc%2Fpasswd", "/../../../../etc/passwd",
    "//etc/passwd", "/static/app.js%00.png", "/static\\..\\server.py", "/bundle/weights.bin/",
    "/steps/../server.py", "/steps/param", "/static/", "/static", "/api", "/api/objective",
    "/static/%ff", "http://127.0.0.1/", "/etc/passwd",
])
def test_paths_outside_the_list_are_not_found(base, path):
    status, _, body = request(base, "GET", path, headers={"Host": "127.0.0.1"})
    assert status == 404, (path, status, body[:200])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_other_methods_are_refused(base, method):
    status, headers, _ = request(base, method, "/static/app.js", body=b"x")
    assert status == 405 and "GET" in headers.get("Allow", ""), (method, status)


def test_only_localhost_names_are_answered_on_loopback(base):
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", ""):
        assert request(base, "GET", "/", headers={"Host": host})[0] == 403, host
        assert request(base, "POST", "/api/objective", body=b"{}", headers={"Host": host})[0] == 403, host
    port = base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"[::1]:{port}"):
        assert request(base, "GET", "/", headers={"Host": host})[0] == 200, host


def test_post_is_only_for_the_objective(base):
    status, _, _ = request(base, "POST", "/static/app.js", body=b"{}")
    assert status == 405


def test_oversized_and_unsized_bodies_are_refused(base):
    big = b"{" + b" " * (MAX_BODY + 1) + b"}"
    status, _, body = request(base, "POST", "/api/objective", body=big)
    assert status == 413 and str(MAX_BODY).encode() in body, (status, body)
    # a length announced far past the limit is refused before any of it is read
    status, _, _ = request(base, "POST", "/api/objective", body=b"", headers={"Content-Length": str(1 << 40)})
    assert status == 413
    status, _, _ = request(base, "POST", "/api/objective", body=b'{"objective": "x"}', skip_length=True)
    assert status == 411
    status, _, _ = request(base, "POST", "/api/objective", body=b"", headers={"Content-Length": "-5"})
    assert status == 400


def _post(base, payload: bytes):
    status, _, body = request(base, "POST", "/api/objective", body=payload,
                              headers={"Content-Type": "application/json"})
    return status, json.loads(body)


def _dense(a: dict) -> np.ndarray:
    out = np.zeros(int(np.prod(a["shape"])), np.float32)
    for start, length, value in a["runs"]:
        out[start:start + length] = value
    return out.reshape(a["shape"])


@pytest.mark.parametrize("text", ["_blocks.10:5", "class:flamingo", "_blocks.10",
                                  "_blocks.9:61 + 0.5*_blocks.12:150 - class:flamingo",
                                  "_blocks.10:5@3,4", "middle:0", "-2*_blocks.5:3 + energy(_blocks.5, 7)"])
def test_the_objective_answer_is_the_arrays_the_engine_feeds(base, text):
    status, answer = _post(base, json.dumps({"objective": text}).encode())
    assert status == 200, answer
    bundle = Bundle.open(default_bundle())
    from types import SimpleNamespace
    bound = Bound(SimpleNamespace(bundle=bundle, image_shape=tuple(bundle.input["shape"])), [parse(text, bundle)])
    want = {}
    for layer in bound.W:
        want[bundle.graph("features", layer).file] = {"layer_weights": bound.W[layer],
                                                      "layer_curvature": bound.A[layer]}
    if bound.logits:
        want[bundle.graph("logits", "logits").file] = dict(bound.logits)
    assert {r["file"] for r in answer["runs"]} == set(want), answer
    for run in answer["runs"]:
        for name, a in run["inputs"].items():
            np.testing.assert_array_equal(_dense(a), want[run["file"]][name].astype(np.float32), err_msg=f"{text}: {name}")
    assert answer["const"] == bound.const and answer["text"] == bound.text


@pytest.mark.parametrize("payload, says", [
    (b'{"objective": "_blocks.10:5000"}', "channel 5000 is out of range"),
    (b'{"objective": "_blocks.99:1"}', "unknown layer"),
    (b'{"objective": "class:no-such-class-here"}', "no-such-class-here"),
    (b'{"objective": ""}', "objective is empty"),
    (b'{"objective": "_blocks.10:5; _blocks.10:6"}', "one objective at a time"),
    (b'{"objective": 5}', "must be JSON"),
    (b'not json', "must be JSON"),
    (b'\xff\xfe', "must be JSON"),
    (b'[]', "must be JSON"),
])
def test_a_bad_objective_gets_one_line(base, payload, says):
    status, answer = _post(base, payload)
    assert status == 400 and says in answer["error"] and "\n" not in answer["error"], answer


@pytest.fixture()
def copied(tmp_path):
    root = tmp_path / "bundle"
    shutil.copytree(default_bundle(), root)
    return root


def test_links_out_of_the_bundle_and_files_it_does_not_list_are_refused(copied, tmp_path):
    bundle = Bundle.open(copied)
    site = Site(bundle, sample())
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"not yours")
    victim = "grad.features___conv_stem.onnx"
    (copied / victim).unlink()
    os.symlink(secret, copied / victim)                 # replaced by a link since it was opened
    (copied / "extra.onnx").write_bytes(b"unlisted")  # appeared since it was opened
    with running(site) as url:
        for path in (f"/bundle/{victim}", "/bundle/extra.onnx", "/bundle/secret.onnx"):
            status, _, body = request(url, "GET", path)
            assert status == 404 and b"not yours" not in body, (path, status)
        assert request(url, "GET", "/bundle/grad.logits__logits.onnx")[0] == 200


def test_links_in_the_page_folder_are_not_served(tmp_path):
    static = tmp_path / "static"
    shutil.copytree(STATIC, static, ignore=shutil.ignore_patterns("*.wasm"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    os.symlink(outside / "secret.txt", static / "secret.txt")
    os.symlink(outside, static / "linked")
    site = Site(Bundle.open(default_bundle()), sample(), static)
    with running(site) as url:
        for path in ("/static/secret.txt", "/static/linked/secret.txt"):
            assert request(url, "GET", path)[0] == 404, path
        assert request(url, "GET", "/static/app.js")[0] == 200
        (static / "app.js").unlink()                  # a served file replaced by a link since start
        os.symlink(outside / "secret.txt", static / "app.js")
        os.mkfifo(static / "page.css.fifo")
        (static / "page.css").unlink()
        os.rename(static / "page.css.fifo", static / "page.css")   # and one by a FIFO: no hang
        for path in ("/static/app.js", "/static/page.css"):
            status, _, body = request(url, "GET", path)
            assert status == 404 and b"not yours" not in body, path


def _serve(*args, wait_line=True):
    p = subprocess.Popen([sys.executable, "-m", "ortviz", "serve", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=subprocess_env())
    return p


def test_the_command_binds_localhost_by_default_and_serves():
    p = _serve("--port", "0")
    try:
        line = p.stderr.readline()
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        assert found and found.group(1) == "127.0.0.1", line
        status, headers, _ = request(f"http://127.0.0.1:{found.group(2)}", "GET", "/")
        assert status == 200 and headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        # a reader that goes away in the middle of the weights: no traceback, still serving
        import socket
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", int(found.group(2))))
            s.sendall(b"GET /bundle/weights.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.recv(1000)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        assert request(f"http://127.0.0.1:{found.group(2)}", "GET", "/")[0] == 200
    finally:
        p.terminate()
        p.wait(timeout=30)
    rest = p.stderr.read()
    assert "Traceback" not in rest and "Exception" not in rest, rest


def test_a_network_address_is_served_with_a_warning():
    p = _serve("--port", "0", "--host", "0.0.0.0")
    try:
        first, second = p.stderr.readline(), p.stderr.readline()
        found = re.search(r"http://0\.0\.0\.0:(\d+)/", first)
        assert found and "warning: 0.0.0.0 is not a loopback address" in second, (first, second)
        # any Host is answered there (the loopback rule is for loopback addresses)
        status, _, _ = request(f"http://127.0.0.1:{found.group(1)}", "GET", "/", headers={"Host": "example.test"})
        assert status == 200
    finally:
        p.terminate()
        p.wait(timeout=30)


@pytest.mark.parametrize("args, says", [
    (["--port", "70000"], "--port must be 0..65535"),
    (["/nonexistent-bundle-dir"], "/nonexistent-bundle-dir"),
    (["--host", "203.0.113.7", "--port", "0"], "cannot listen on 203.0.113.7:0"),
])
def test_bad_arguments_get_one_line_and_exit_2(args, says):
    r = subprocess.run([sys.executable, "-m", "ortviz", "serve", *args], capture_output=True, text=True,
                       timeout=120, env=subprocess_env())
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0], (r.returncode, r.stderr)


def _fake_atlas(root, sha):
    root.mkdir()
    (root / "atlas.json").write_text(json.dumps({"model": {"manifest_sha256": sha}}))
    (root / "index.html").write_text("<p>atlas</p>")
    (root / "channels").mkdir()
    (root / "channels" / "0.html").write_text("<p>unit</p>")
    return root


def test_an_atlas_of_the_bundle_is_served_under_atlas_and_nothing_beside_it(tmp_path):
    bundle = Bundle.open(default_bundle())
    site_dir = _fake_atlas(tmp_path / "site", bundle.manifest_sha256)
    (tmp_path / "secret.txt").write_text("not yours")
    os.symlink(tmp_path / "secret.txt", site_dir / "linked.txt")
    with running(Site(bundle, sample(), atlas=site_dir)) as url:
        assert request(url, "GET", "/atlas/")[2] == b"<p>atlas</p>"
        assert request(url, "GET", "/atlas/channels/0.html")[2] == b"<p>unit</p>"
        status, headers, _ = request(url, "GET", "/atlas")
        assert status == 301 and headers["Location"] == "/atlas/"
        for path in ("/atlas/linked.txt", "/atlas/../secret.txt", "/atlas/%2e%2e/secret.txt", "/atlas/channels/"):
            assert request(url, "GET", path)[0] == 404, path
        assert json.loads(request(url, "GET", "/api/bundle")[2])["atlas"] is True
    with running() as url:       # no --atlas: nothing there
        assert request(url, "GET", "/atlas/")[0] == 404


def test_an_atlas_of_another_bundle_or_no_atlas_is_refused(tmp_path):
    other = _fake_atlas(tmp_path / "other", "0" * 64)
    for args, says in (([f"--atlas={other}"], "made from another bundle"),
                       ([f"--atlas={tmp_path}"], "not an atlas site"),
                       ([f"--atlas={tmp_path / 'none'}"], "no such directory")):
        r = subprocess.run([sys.executable, "-m", "ortviz", "serve", "--port", "0", *args], capture_output=True,
                           text=True, timeout=120, env=subprocess_env())
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and says in lines[0], (args, r.returncode, r.stderr)
