"""``ortviz serve``: the browser page (DeepDream and feature visualization on onnxruntime-web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ortviz._util.paths import odd
from ortviz.bundle.embedded import sample
from ortviz.cli.common import UsageError, friendly, open_bundle
from ortviz.serve import Site, make_server

BundleArg = Annotated[Optional[Path], typer.Argument(
    help="Bundle directory (default: the embedded EfficientNet-Lite0).", show_default=False)]


@friendly
def serve(bundle: BundleArg = None,
          port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8000,
          host: Annotated[str, typer.Option("--host", help="Address to bind: 127.0.0.1 keeps the page "
                                            "to this machine; 0.0.0.0 opens it to the network.")] = "127.0.0.1",
          atlas: Annotated[Optional[Path], typer.Option(
              "--atlas", help="An atlas site (ortviz atlas -o SITE) of this bundle to serve at /atlas/: "
              "its channel pages then link to the live view.", show_default=False)] = None,
          log: Annotated[bool, typer.Option("--log", help="Log each request on stderr.")] = False):
    """Serve a page that runs DeepDream and feature visualization in the browser (onnxruntime-web;
    nothing is fetched from elsewhere). Stop it with Ctrl-C."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {port}")
    if atlas is not None and odd(atlas, "an atlas site", directory=True):
        raise UsageError(f"--atlas {odd(atlas, 'an atlas site', directory=True)}")
    b = open_bundle(bundle)
    try:
        site = Site(b, sample(), atlas=atlas)
    except ValueError as exc:
        raise UsageError(f"--atlas: {exc}") from None
    try:
        server = make_server(site, host, port, log)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    h, p = server.server_address[:2]
    shown = f"[{h}]" if ":" in h else h
    typer.echo(f"serving {site.bundle.name} on http://{shown}:{p}/ (Ctrl-C stops)"
               + (f"; the atlas at http://{shown}:{p}/atlas/" if atlas is not None else ""), err=True)
    if not server.loopback:
        typer.echo(f"warning: {host} is not a loopback address: whoever can reach this machine can "
                   "use the page", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
