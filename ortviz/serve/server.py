"""The HTTP server of ``ortviz serve``: the standard library's ThreadingHTTPServer.

It serves a fixed list of things and nothing else (docs/browser.md, "Safety"):

- ``/`` (the page) and ``/static/NAME``: the regular files under ``static/`` found at start
  (links skipped), by their exact relative names; each is opened without following a link and
  must still be a regular file (one replaced by a link or a FIFO since is 404);
- ``/bundle/NAME``: the files the bundle's manifest lists (read through
  :meth:`ortviz.bundle.reader.Bundle.path_of`, which refuses ``..``, absolute names and links at any
  component, so a file replaced by a link since the bundle was opened is refused too);
- ``/steps/param.onnx``, ``pre.onnx``, ``post.onnx``: the step graphs, built at start;
- ``/atlas/NAME`` (``ortviz serve --atlas SITE``): an atlas site's files, as ``static/``'s, its
  unit pages then linking to the live view;
- ``/photo.png``: the bundled sample photo; ``/api/bundle``: the page's description of the
  bundle; ``POST /api/objective``: an objective string parsed by the CLI's parser, as feeds.

A path is matched against that list after one percent-decoding; anything else is 404. Bound
to a loopback address, it answers only requests whose ``Host`` is a loopback name (403
otherwise: another site's name pointed at 127.0.0.1, DNS rebinding, reads nothing). GET and
HEAD are answered, POST only at ``/api/objective`` with a JSON body of at most
:data:`MAX_BODY` bytes (411 without a length, 413 above it); other methods get 405. Every
answer carries the cross-origin-isolation headers (COOP ``same-origin``, COEP
``require-corp``) that onnxruntime-web's threads need (SharedArrayBuffer), and ``nosniff``.
It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import stat
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ortviz.errors import BundleError, first_line
from ortviz.objective.algebra import ObjectiveError
from ortviz.serve.describe import describe, recipe_of, step_models
from ortviz.serve.feeds import objective_feeds

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 << 10                 # an objective string needs far less
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".wasm": "application/wasm",
         ".json": "application/json", ".png": "image/png", ".css": "text/css; charset=utf-8",
         ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
         ".onnx": "application/octet-stream", ".bin": "application/octet-stream"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "localhost."}
HEADERS = {"Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Embedder-Policy": "require-corp",
           "Cross-Origin-Resource-Policy": "same-origin",
           "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}


def static_files(root: Path = STATIC) -> dict[str, Path]:
    """The regular files under ``root`` by relative name (``/``-separated); links (and
    anything under a linked directory) are left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
        for name in filenames:
            p = base / name
            if stat.S_ISREG(os.lstat(p).st_mode):
                out[p.relative_to(root).as_posix()] = p
    return out


def atlas_files(site: Path, bundle) -> dict[str, Path]:
    """An atlas site's files (as :func:`static_files`), after checking that ``ortviz atlas``
    made it from ``bundle`` (its live links would run another model); ValueError otherwise."""
    try:
        record = json.loads((Path(site) / "atlas.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{site} is not an atlas site (no readable atlas.json: "
                         f"{getattr(exc, 'strerror', None) or exc})") from None
    made = (record.get("model") or {}).get("manifest_sha256") if isinstance(record, dict) else None
    if made != bundle.manifest_sha256:
        raise ValueError(f"the atlas {site} was made from another bundle than {bundle.root}; "
                         "serve it with the bundle it was made from")
    return static_files(Path(site))


class Site:
    """What one server answers: the bundle, the page's files, the step graphs (built here)."""

    def __init__(self, bundle, photo: Path, static: Path = STATIC, atlas: Path | None = None):
        self.bundle = bundle
        self.static = static_files(static)
        if "index.html" not in self.static:
            raise FileNotFoundError(f"the page is missing from {static} (a broken install?)")
        self.photo = photo
        self.atlas = None if atlas is None else atlas_files(atlas, bundle)
        recipe = recipe_of(bundle)
        self.steps = step_models(recipe)
        self.description = json.dumps(describe(bundle, recipe) | {"atlas": self.atlas is not None}).encode()
        self.listed = frozenset(bundle.manifest["files"])

    def objective(self, body: bytes) -> tuple[int, dict]:
        try:
            text = json.loads(body.decode("utf-8")).get("objective")
        except (UnicodeDecodeError, ValueError, AttributeError):
            return 400, {"error": "the body must be JSON: {\"objective\": \"...\"}"}
        if not isinstance(text, str):
            return 400, {"error": "the body must be JSON: {\"objective\": \"...\"}"}
        try:
            return 200, objective_feeds(self.bundle, text)
        except (ObjectiveError, BundleError) as exc:
            return 400, {"error": first_line(exc)}

    def lookup(self, path: str):
        """``(content type, bytes or a file path)`` for a GET of ``path``, or None."""
        if path in ("/", "/index.html"):
            return TYPES[".html"], self.static["index.html"]
        if path == "/api/bundle":
            return TYPES[".json"], self.description
        if path == "/photo.png":
            return TYPES[".png"], self.photo
        head, _, rest = path.lstrip("/").partition("/")
        if head == "atlas" and self.atlas is not None and path != "/atlas":
            rest = rest or "index.html"
            return (_type(rest), self.atlas[rest]) if rest in self.atlas else None
        if head == "static" and rest in self.static:
            return _type(rest), self.static[rest]
        if head == "steps" and rest.endswith(".onnx") and rest[:-5] in self.steps:
            return TYPES[".onnx"], self.steps[rest[:-5]]
        if head == "bundle" and rest in self.listed:
            try:
                return _type(rest), self.bundle.path_of(rest)
            except BundleError:
                return None
        return None


def _open_regular(path: Path):
    """``path`` opened for reading if it is still a regular file and not a link (the last
    component is not followed; a FIFO does not block), else None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _type(name: str) -> str:
    return TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


class Handler(BaseHTTPRequestHandler):
    site: Site = None                    # set on the subclass make_server builds
    def version_string(self):
        return "ortviz"

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):   # quiet unless asked (ortviz serve --log)
        if getattr(self.server, "log", False):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def end_headers(self):
        for k, v in HEADERS.items():
            self.send_header(k, v)
        super().end_headers()

    def _plain(self, code: int, text: str, extra: dict | None = None, body: bool = True):
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _path(self) -> str | None:
        if not self.path.startswith("/") or self.path.startswith("//"):
            return None                       # absolute-form (a proxy's request) or a network path
        try:
            path = unquote(urlsplit(self.path).path, errors="strict")
        except UnicodeDecodeError:
            return None
        return None if "\x00" in path or "\\" in path else path

    def _host_ok(self) -> bool:
        """On a loopback address, only loopback names in Host: a page elsewhere whose name is
        made to point at 127.0.0.1 (DNS rebinding) gets nothing."""
        if not getattr(self.server, "loopback", False):
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        return name in LOOPBACK_NAMES

    def _get(self, body: bool):
        if not self._host_ok():
            self._plain(403, "this server answers to localhost names only", body=body)
            return
        path = self._path()
        if path == "/atlas" and self.site.atlas is not None:
            self._plain(301, "see /atlas/", {"Location": "/atlas/"}, body=body)
            return
        if path == "/favicon.ico":            # asked by browsers on every page (the atlas's): none
            self.send_response(204)
            self.end_headers()
            return
        hit = None if path is None else self.site.lookup(path)
        if hit is None:
            self._plain(404, "not found", body=body)
            return
        ctype, what = hit
        if not isinstance(what, bytes):
            what = _open_regular(what)
            if what is None:              # replaced by a link or a special file since start
                self._plain(404, "not found", body=body)
                return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache")
        if isinstance(what, bytes):
            self.send_header("Content-Length", str(len(what)))
            self.end_headers()
            if body:
                self.wfile.write(what)
            return
        with what as f:
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            if body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

    def do_GET(self):
        self._get(True)

    def do_HEAD(self):
        self._get(False)

    def do_POST(self):
        if not self._host_ok():
            self.close_connection = True
            self._plain(403, "this server answers to localhost names only")
            return
        if self._path() != "/api/objective":
            self._plain(405, "method not allowed", {"Allow": "GET, HEAD"})
            return
        size = self.headers.get("Content-Length")
        if size is None or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._plain(411, "a Content-Length is required")
            return
        try:
            n = int(size)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True       # the body is not read: do not parse it as a request
            self._plain(413 if n > MAX_BODY else 400,
                        f"the body must be at most {MAX_BODY} bytes" if n > MAX_BODY else "bad Content-Length")
            return
        code, answer = self.site.objective(self.rfile.read(n))
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", TYPES[".json"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self):
        self.close_connection = True
        self._plain(405, "method not allowed", {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A browser that goes away mid-answer is normal: nothing said; anything else one line
        (the standard library prints a traceback)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write(f"error: answering {client_address[0]}: {type(exc).__name__}: "
                         f"{first_line(exc) if str(exc) else ''}\n")


def make_server(site: Site, host: str = "127.0.0.1", port: int = 8000, log: bool = False) -> ThreadingHTTPServer:
    """A server for ``site`` bound to ``host:port`` (port 0: any free one); call
    ``serve_forever`` on it."""
    handler = type("SiteHandler", (Handler,), {"site": site})
    server = Server((host, port), handler)
    server.log = log
    server.loopback = ipaddress.ip_address(server.server_address[0]).is_loopback
    return server


__all__ = ["MAX_BODY", "Site", "make_server", "static_files"]
