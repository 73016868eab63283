"""Technique commands, made from each plugin's declared parameters.

``ortviz run NAME [OPTIONS]`` runs any installed technique; ``class-viz``, ``invert``,
``dream`` and ``feature-viz`` are the built-ins' short names, and a third party's technique is
also ``ortviz NAME`` where that name is not already a command. Options common to all: model,
layer, targets, photo,
seed, provider, threads, output, snapshots. A technique's own options come from its ``params``:
the command's signature is built from them, and typer reads it like any other.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core

from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.cli.common import SHORT, friendly
from ortviz.objective.positions import POSITIONS, positions_text
from ortviz.techniques.registry import discover


def _opt(name, annotation, default, *flags, **kw):
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, typer.Option(*flags, **kw)])


def _signature(tech) -> inspect.Signature:
    ps = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        _opt("model", Optional[Path], None, "--model", "-m", is_eager=True,  # read before --help
             help="Bundle directory (default: the embedded EfficientNet-Lite0)."),
        _opt("seed", int, 0, "--seed",
             help="Random seed; the same seed on the same CPU gives the same image."),
        _opt("provider", str, "auto", "--provider",
             help="Execution provider: auto, cpu, cuda, tensorrt, openvino, ..."),
        _opt("threads", Optional[int], None, "--threads", min=1,
             help="Intra-op threads (default: onnxruntime's choice)."),
        _opt("step", str, "auto", "--step",
             help="Where a step's parameterization, transforms and optimizer run: numpy, graph "
                  "(ONNX graphs on the provider; fft + Adam recipes) or auto (the faster on the "
                  "provider)."),
        _opt("output", Optional[Path], None, "--output", "-o",
             help=f"Output image (default: out/{tech.name}.png); a .json sidecar goes beside it."),
        _opt("snapshot_every", int, 0, "--snapshot-every", min=0,
             help="Keep a frame every N iterations: frames folder, GIF and contact sheet."),
    ]
    if any(n.on == "layers" for n in tech.needs):
        ps.append(_opt("layer", Optional[str], tech.default_layer or "middle", "--layer", "-l",
                       help=LAYER_HELP))
    if any(n.on == "logits" for n in tech.needs):
        ps.append(_opt("targets", Optional[list[str]], None, "--class", "-c", metavar="<class>",
                       help="Target class by index or name (see `ortviz labels`); repeat for several "
                            "(default: flamingo where the bundle has it, else class 0)."))
    if tech.start == "photo":
        ps.append(_opt("image", Optional[Path], None, "--image", "-i",
                       help="Photo to start from (default: the bundled chelsea.png); its shorter "
                            "side at least 8 pixels; a JPEG over 50 MP is read reduced."))
    for p in tech.params:
        flag = "--" + p.name.replace("_", "-")
        if p.type is bool:  # a switch both ways, whatever its default: --warm-up/--no-warm-up
            flag = f"{flag}/--no-{flag[2:]}"
        ps.append(_opt(p.name, p.type, p.default, flag, help=p.help))
    return inspect.Signature(ps)


LAYER_HELP = ("Layer name (see `ortviz layers`), or early, middle, late: the layers 1/3, 3/5 "
              "and 5/6 of the way through the bundle's layer table.")


def layer_help(tech, model: Path | None) -> str:
    """The ``--layer`` help: where each position lands for ``tech`` on the bundle ``model``
    (the embedded one when None), or why that cannot be told."""
    fractions = POSITIONS | (tech.positions or {})
    how = ", ".join(f"{p} {fractions[p]:.2f}" for p in POSITIONS)
    try:
        bundle = Bundle.open(model if model is not None else default_bundle())
        where = f"on {bundle.name}: {positions_text(bundle.layers, tech.positions)}"
    except Exception as exc:  # help must print whatever the bundle is
        where = f"(the bundle cannot be read: {' '.join(str(exc).split())[:120]})"
    return (f"Layer name (see `ortviz layers`), or a position in the bundle's layer table "
            f"(fraction of the way through: {how}); {where}.")


class TechniqueCommand(typer.core.TyperCommand):
    """A technique's command: its ``--help`` says which layer each position resolves to on the
    bundle given with ``--model`` before ``--help`` (``--model`` is eager), else the embedded one."""

    tech = None

    def format_help(self, ctx, formatter):
        for p in self.params:
            if p.name == "layer" and self.tech is not None:
                p.help = layer_help(self.tech, ctx.params.get("model"))
        return super().format_help(ctx, formatter)


def command_class(tech):
    return type("TechniqueCommand", (TechniqueCommand,), {"tech": tech})


def make_command(tech):
    def command(ctx: typer.Context, **kw):
        from ortviz.run.runner import RunRequest, run_request  # onnxruntime: only when it runs
        given = frozenset(p.name for p in tech.params
                          if ctx.get_parameter_source(p.name).name != "DEFAULT")
        params = {p.name: p.validate(kw.pop(p.name)) for p in tech.params}
        req = RunRequest(technique=tech, params=params, model=kw.get("model"),
                         layer=kw.get("layer"), targets=list(kw.get("targets") or []),
                         image=kw.get("image"), seed=kw["seed"], provider=kw["provider"],
                         threads=kw["threads"], step=kw["step"], output=kw.get("output"),
                         snapshot_every=kw["snapshot_every"], given=given)
        code = run_request(req, echo=typer.echo, err=lambda m: typer.echo(m, err=True))
        if code:
            raise typer.Exit(code)

    command.__signature__ = _signature(tech)
    command.__doc__ = (f"{tech.summary}\n\n" + (f"{tech.description}\n\n" if tech.description else "")
                       + "Defaults are tuned on the embedded EfficientNet-Lite0 at 224x224.")
    command.__name__ = tech.name.replace("-", "_")
    return friendly(command)


def add_to(app: typer.Typer) -> None:
    run_app = typer.Typer(help="Run any installed technique with its own options.",
                          no_args_is_help=True)
    loaded = {p.name: p.technique for p in discover() if p.technique}
    for name, tech in loaded.items():
        run_app.command(name, cls=command_class(tech))(make_command(tech))
    app.add_typer(run_app, name="run")
    for short, full in SHORT.items():
        if full in loaded:
            app.command(short, cls=command_class(loaded[full]))(make_command(loaded[full]))
    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name, tech in loaded.items():  # third parties' techniques, where the name is free
        if name not in SHORT.values() and name not in taken:
            app.command(name, cls=command_class(tech))(make_command(tech))
