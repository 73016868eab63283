"""The ``ortviz`` command: one Typer app per command group, assembled here."""

from __future__ import annotations

import typer

from . import export, inspect, plugins, techniques

app = typer.Typer(help="See what an image classifier learned: class visualization, feature "
                       "inversion and DeepDream on stock ONNX Runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(export.app, name="export")
app.command("info")(inspect.info)
app.command("layers")(inspect.layers)
app.command("labels")(inspect.labels)
app.command("plugins")(plugins.plugins)


techniques.add_to(app)


def main() -> None:
    app(prog_name="ortviz")
