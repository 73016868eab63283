"""The ``ortviz`` command: one Typer app per command group, assembled here."""

from __future__ import annotations

from typing import Annotated

import typer

from . import atlas, classify, export, inspect, plugins, providers, serve, techniques
from .common import OneLineErrors

app = typer.Typer(help="See what an image classifier learned: class visualization, feature "
                       "inversion and DeepDream on stock ONNX Runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=OneLineErrors,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        import platform

        import onnxruntime

        from .. import __version__
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


def main() -> None:
    import sys

    from ..plugins import skipped_lines
    from .common import quiet_exit
    try:
        for line in skipped_lines():  # a broken plugin is named, once, and every command still works
            print(line, file=sys.stderr)
        app(prog_name="ortviz")
    except BrokenPipeError:  # outside a command (its help, a usage line): the reader went away
        sys.exit(quiet_exit().exit_code)
