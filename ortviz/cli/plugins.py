"""``ortviz plugins``: the installed technique plugins."""

from __future__ import annotations

from typing import Annotated

import typer

from ..plugins import ALLOW_ENV, discover
from .common import print_json


def plugins(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """List installed technique plugins (name, package, version, summary)."""
    found = discover()
    if as_json:
        print_json([{"name": p.name, "package": p.package, "version": p.version,
                     "summary": p.technique.summary if p.technique else None,
                     "error": p.error} for p in found])
        return
    for p in found:
        what = p.technique.summary if p.technique else f"FAILED TO LOAD: {p.error}"
        typer.echo(f"{p.name:<22} {p.package + ' ' + p.version:<24} {what}")
    typer.echo(f"({len(found)} plugins; {ALLOW_ENV} restricts which load)", err=True)
