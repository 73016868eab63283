"""``ortviz export torch|onnx``: build a bundle (needs the export environment)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ortviz.bundle.labels import LabelError, read_labels
from ortviz.cli.common import UsageError, friendly
from ortviz.techniques.registry import techniques

app = typer.Typer(help="Export a classifier to a bundle of portable gradient graphs "
                       "(run in the export environment: onnxruntime-training + torch).",
                  no_args_is_help=True)

Out = Annotated[Path, typer.Option("-o", "--output", help="Bundle directory to write.")]
Size = Annotated[int, typer.Option(help="Input height and width in pixels.", min=8)]
Batch = Annotated[int, typer.Option(help="Images per graph run (static batch).", min=1)]
Layers = Annotated[str, typer.Option(
    help="'default' (block/stage outputs), 'all' (every 4-D tensor), or comma-separated names.")]
Preset = Annotated[str, typer.Option(
    "--preprocess", help="Preprocessing preset: imagenet, lite ((p-127)/128), unit (p/255), signed.")]
Floats = Annotated[Optional[str], typer.Option(help="Per-channel values, comma-separated, 0..255 scale; overrides the preset.")]
LabelsOpt = Annotated[Optional[Path], typer.Option(
    "--labels", help="Labels file: one per line, or index<TAB>synset<TAB>names.", exists=True,
    dir_okay=False)]
Name = Annotated[Optional[str], typer.Option(help="Model name recorded in the manifest.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing bundle.")]


def _floats(text: str | None, fallback: list[float], what: str) -> list[float]:
    if text is None:
        return fallback
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--{what} must be comma-separated numbers, got {text!r}") from None


def _options(name, source, size, batch, layers, preprocess, mean, std, labels, recipe):
    from ortviz.export.pipeline import PREPROCESSING, ExportOptions  # the export environment only

    if preprocess not in PREPROCESSING:
        raise UsageError(f"unknown --preprocess {preprocess!r}; choose {', '.join(PREPROCESSING)}")
    pre = PREPROCESSING[preprocess]
    try:
        names = read_labels(labels) if labels else None
    except LabelError as exc:
        raise UsageError(str(exc)) from None
    return ExportOptions(name=name, source=source, size=size, batch=batch, layers=layers,
                         mean=_floats(mean, pre["mean"], "mean"), std=_floats(std, pre["std"], "std"),
                         labels=names, recipe=recipe)


def _run(model, out, opts, force):
    from ortviz.export.pipeline import export_model  # onnxruntime-training: the export environment

    path, graphs = export_model(model, out, opts, techniques(), force=force,
                                progress=lambda m: typer.echo(f"  {m}", err=True))
    typer.echo(f"wrote {path} ({len(graphs)} gradient graphs)")


def _recipe(ctx: typer.Context) -> str:
    return "ortviz " + " ".join(sys.argv[1:]) if sys.argv else ctx.command_path


@app.command("torch")
@friendly
def export_torch(
    ctx: typer.Context,
    factory: Annotated[str, typer.Argument(help="MODULE:FACTORY returning an eval-mode nn.Module.")],
    output: Out,
    weights: Annotated[Optional[Path], typer.Option(
        help="State dict to load (torch.load with weights_only=True).", exists=True, dir_okay=False)] = None,
    exporter: Annotated[str, typer.Option(help="torch exporter: torchscript or dynamo.")] = "torchscript",
    size: Size = 224, batch: Batch = 1, layers: Layers = "default", preprocess: Preset = "imagenet",
    mean: Floats = None, std: Floats = None, labels: LabelsOpt = None, name: Name = None,
    force: Force = False,
):
    """Export a PyTorch classifier given as MODULE:FACTORY."""
    from ortviz.export.frontends import from_torch, torch_module  # torch: the export environment

    opts = _options(name or factory, f"torch:{factory}", size, batch, layers, preprocess, mean,
                    std, labels, _recipe(ctx))
    model = from_torch(torch_module(factory, weights), size, batch, exporter=exporter)
    _run(model, output, opts, force)


@app.command("onnx")
@friendly
def export_onnx(
    ctx: typer.Context,
    model_path: Annotated[Path, typer.Argument(help="Classifier in ONNX format.", dir_okay=False)],
    output: Out,
    size: Annotated[Optional[int], typer.Option(
        help="Input height and width in pixels (default: the model's fixed input size, else 224).",
        min=8)] = None, batch: Batch = 1, layers: Layers = "default", preprocess: Preset = "imagenet",
    mean: Floats = None, std: Floats = None, labels: LabelsOpt = None, name: Name = None,
    force: Force = False,
):
    """Export a classifier already in ONNX (a model-zoo file, a tf2onnx output)."""
    from ortviz.export.frontends import load_onnx  # the export environment only

    opts = _options(name or model_path.stem, f"onnx:{model_path.name}", size, batch, layers,
                    preprocess, mean, std, labels, _recipe(ctx))
    _run(load_onnx(model_path), output, opts, force)
