"""Helpers for the ``ortviz serve`` tests: a server in a thread, raw HTTP requests."""

from __future__ import annotations

import http.client
import threading
from contextlib import contextmanager

from ortviz.bundle import Bundle
from ortviz.defaults import default_bundle, sample
from ortviz.serve import Site, make_server


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
