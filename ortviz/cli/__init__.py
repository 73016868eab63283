"""The ``ortviz`` command: one Typer app per command group, assembled here."""

from __future__ import annotations

import platform
import sys
from typing import Annotated

import typer

from ortviz import __version__
from ortviz.cli import atlas, classify, export, inspect, plugins, providers, serve, techniques
from ortviz.cli.common import OneLineErrors, quiet_exit
from ortviz.techniques.registry import skipped_lines

app = typer.Typer(help="See what an image classifier learned: class visualization, feature "
                       "inversion and DeepDream on stock ONNX Runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=OneLineErrors,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:

        import onnxruntime  # here only: info, layers and labels work without it

        typer.echo(f"ortviz {__version__} (onnxruntime {onnxruntime.__version__}, "
                   f"Python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show ortviz's version and exit.")] = False):
    pass
app.add_typer(export.app, name="export")
app.command("info")(inspect.info)
app.command("layers")(inspect.layers)
app.command("labels")(inspect.labels)
app.command("classify")(classify.classify)
app.command("plugins")(plugins.plugins)
app.command("providers")(providers.providers)
app.command("atlas")(atlas.atlas)
app.command("serve")(serve.serve)


techniques.add_to(app)


def _quiet_rich() -> None:
    """rich (typer's help) ends with exit 1 when the reader of its output goes away
    (``ortviz --help | head -1``); the command ends as on any other output: 141, quietly.
    ``Console.on_broken_pipe`` is rich's documented hook for this."""
    try:
        from rich.console import Console  # optional: typer without rich prints plain help
    except ImportError:
        return

    def on_broken_pipe(self) -> None:
        raise quiet_exit()

    Console.on_broken_pipe = on_broken_pipe


def main() -> None:
    _quiet_rich()
    try:
        for line in skipped_lines():  # a broken plugin is named, once, and every command still works
            print(line, file=sys.stderr)
        app(prog_name="ortviz")
    except BrokenPipeError:  # outside a command (its help, a usage line): the reader went away
        sys.exit(quiet_exit().exit_code)
