"""``ortviz classify IMAGE``: the model's top-5 for a photo, as the techniques see it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ortviz.cli.common import UsageError, friendly, print_json
from ortviz.run.imagefiles import load_image
from ortviz.run.options import max_threads


@friendly
def classify(image: Annotated[Path, typer.Argument(
                 help="Photo (PNG, JPEG, ...); cropped to the model's aspect around its centre and "
                      "resized, as the techniques see it.", show_default=False, metavar="IMAGE")],
             model: Annotated[Optional[Path], typer.Option(
                 "--model", "-m", help="Bundle directory (default: the embedded EfficientNet-Lite0).")] = None,
             provider: Annotated[str, typer.Option(
                 "--provider", help="Execution provider: auto, cpu, cuda, tensorrt, openvino, ...")] = "auto",
             threads: Annotated[Optional[int], typer.Option(
                 "--threads", min=1, help="Intra-op threads (default: onnxruntime's choice).")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """Show the model's top-5 classes for a photo, with their probabilities."""
    from ortviz.api import load  # onnxruntime loads when a command runs a model, not for --help

    if threads is not None and threads > max_threads():
        raise UsageError(f"--threads must be from 1 to {max_threads()} (4 x this machine's CPUs), "
                         f"got {threads}")
    photo = load_image(image)  # readable before the model loads
    try:
        m = load(model, provider=provider, threads=threads)
    except ValueError as exc:  # an unknown or unavailable provider
        raise UsageError(str(exc)) from None
    top = m.classify(photo)
    if as_json:
        print_json({"image": str(image), "top5": top})
        return
    for c in top:
        typer.echo(f"{c['class']:>5}  {c['probability']:.3f}  {c['label']}")
