"""The atlas site in a real browser: Debian's headless Chromium opens every page from file://.

Each page is opened with ``?selfcheck``: the site's own script then writes, once the page has
loaded, what it saw into the page (errors, images with their natural width, links resolved by
the browser, the layer's channel count and cells), and ``--dump-dom`` hands the page back. Also
asserted: nothing was written to the browser console (Chromium logs console messages to stderr
with ``--enable-logging=stderr``). No Chromium is a failure that says how to install it.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from atlas_support import LAYERS, load, small_site
from serving import chromium

from ortviz.api import load as load_model

pytestmark = pytest.mark.runtime


def selfcheck(page: Path, profile: Path) -> tuple[dict, list[str]]:
    url = page.as_uri() + "?selfcheck"
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="selfcheck">(.*?)</pre>', proc.stdout, re.S)
    assert found, (f"{url}: the page wrote no self-check (chromium exit {proc.returncode}): "
                   f"{proc.stderr[-800:]}")
    console = [l for l in proc.stderr.splitlines() if ":CONSOLE" in l]
    return json.loads(html.unescape(found.group(1))), console


def test_every_page_passes_in_headless_chromium(tmp_path):
    site = small_site().resolve()
    a = load(site)
    table = {l["name"]: l for l in load_model(threads=1).bundle.layers}
    pages = sorted(site.rglob("*.html"))
    want = {"index.html", *(l["page"] for l in a["layers"]), *(c["page"] for c in a["channels"]),
            *(c["page"] for c in a["classes"])}
    assert {str(p.relative_to(site)) for p in pages} == want
    layer_of = {l["page"]: l for l in a["layers"]}
    for page in pages:
        rel = str(page.relative_to(site))
        result, console = selfcheck(page, tmp_path / "profile")
        assert console == [], f"{rel}: console: {console}"
        assert result["errors"] == [], f"{rel}: {result['errors']}"
        assert result["images"], f"{rel} shows no picture"
        for img in result["images"]:
            assert img["complete"] and img["naturalWidth"] > 0, f"{rel}: {img['src']} not decoded"
        for link in result["links"]:
            u = urlparse(link)
            target = Path(unquote(u.path))
            assert u.scheme == "file" and target.is_file(), f"{rel}: link {link} does not resolve"
            assert site in target.resolve().parents, f"{rel}: link {link} leaves the site"
        if rel in layer_of:
            layer = layer_of[rel]
            assert result["layer_channels"] == table[layer["name"]]["shape"][1], rel
            assert result["channel_cells"] == len(layer["listed"]) == 2, rel
        if rel == "index.html":
            links = {str(Path(unquote(urlparse(l).path)).relative_to(site)) for l in result["links"]}
            assert {f"layers/{n}.html" for n in LAYERS} <= links
            assert {c["page"] for c in a["classes"]} <= links
