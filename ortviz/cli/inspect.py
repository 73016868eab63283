"""``ortviz info``, ``ortviz layers`` and ``ortviz labels``: what a bundle holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ortviz.bundle.labels import describe, search as find
from ortviz.cli.common import UsageError, friendly, open_bundle, print_json
from ortviz.objective.algebra import ObjectiveError, layout

BundleArg = Annotated[Optional[Path], typer.Argument(
    help="Bundle directory (default: the embedded EfficientNet-Lite0).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@friendly
def info(bundle: BundleArg = None, as_json: JsonOpt = False):
    """Show a bundle's manifest: model, input, preprocessing, graphs."""
    b = open_bundle(bundle)
    m = b.manifest
    if as_json:
        print_json({k: v for k, v in m.items() if k != "labels"} | {"classes": len(m["labels"])})
        return
    pre = m["preprocessing"]
    typer.echo(f"bundle      {b.root}")
    typer.echo(f"model       {m['model']['name']}  ({m['model']['source']})")
    typer.echo(f"input       {m['input']['name']} {m['input']['shape']} {m['input']['layout']} "
               f"{m['input']['color_order']}")
    typer.echo(f"preprocess  {pre['formula']}  mean={pre['mean']} std={pre['std']}")
    typer.echo(f"classes     {len(m['labels'])}")
    typer.echo(f"layers      {len(m['layers'])}  (ortviz layers)")
    typer.echo(f"graphs      {len(m['graphs'])}")
    for g in m["graphs"]:
        typer.echo(f"  {g['objective']:<20} {g['layer']:<24} {g['file']}")


@friendly
def layers(bundle: BundleArg = None, as_json: JsonOpt = False):
    """List the layers objectives can read: channels (LAYER:0..N-1) and positions of each."""
    b = open_bundle(bundle)

    def sizes(shape):
        try:
            cax, pax = layout(shape)
        except ObjectiveError:
            return None, None
        return shape[cax], "x".join(str(shape[a]) for a in pax) or "1"

    if as_json:
        print_json([dict(l, channels=sizes(l["shape"])[0], positions=sizes(l["shape"])[1])
                    for l in b.layers])
        return
    rows = []
    for l in b.layers:
        c, p = sizes(l["shape"])
        rows.append([l["name"], "-" if c is None else str(c), p or "-", str(tuple(l["shape"])),
                     l["op"], l["tensor"]])
    for line in table(["layer", "channels", "positions", "shape", "op", "tensor"], rows, "<>><<<"):
        typer.echo(line)


def table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Columns as wide as their widest cell (``align``: ``<`` or ``>`` per column), two
    spaces apart, no trailing spaces."""
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(r, align, widths)).rstrip()
            for r in [header, *rows]]


@friendly
def labels(bundle: BundleArg = None,
           search: Annotated[Optional[str], typer.Option(
               "--search", "-s", help="Only classes with a name containing TEXT.")] = None,
           as_json: JsonOpt = False):
    """List a bundle's classes (index and names); names two classes share are told apart.

    A name two classes share (ImageNet's crane: the bird and the machine) is shown with each
    class's neighbours in the label order, which tell them apart where the order follows a
    hierarchy: 134 (crane) next to bittern and limpkin, 517 (crane) next to cradle and crash
    helmet. A class is found by its index, a full name, or a word of one class's names
    (shuttle: 812, space shuttle); a word of several classes lists them."""

    b = open_bundle(bundle)
    ids = find(b.labels, search) if search is not None else range(len(b.labels))
    if search is not None and not ids:
        raise UsageError(f"no class name contains {search!r}")
    if as_json:
        print_json([{"class": i, "label": b.labels[i]} for i in ids])
        return
    for i in ids:
        typer.echo(describe(b.labels, i))
