"""``ortviz plugins``: the installed technique plugins, then the objective plugins (text only)."""

from __future__ import annotations

from typing import Annotated

import typer

from ortviz.cli.common import print_json
from ortviz.objective.plugins import discover as discover_objectives
from ortviz.techniques.registry import ALLOW_ENV, discover


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
    objectives = discover_objectives()
    for p in objectives:
        what = p.plugin.summary if p.plugin else f"FAILED TO LOAD: {p.error}"
        typer.echo(f"{p.name + '(...)':<22} {p.package + ' (objective)':<24} {what}")
    typer.echo(f"({len(found)} technique plugins, {len(objectives)} objective plugins; "
               f"{ALLOW_ENV} restricts which load)", err=True)
