"""What every command shares: one-line errors instead of tracebacks, bundle resolution."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import typer

from ..bundle import Bundle, BundleError
from ..defaults import default_bundle
from ..errors import UsageError, first_line


def _expected() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [UsageError, BundleError, FileExistsError,
                                        FileNotFoundError, PermissionError, IsADirectoryError]
    from ..export.graph import ExportError
    from ..imaging import ImageError
    from ..labels import LabelError
    from ..providers import ProviderError
    from ..render import NumericalError
    from ..technique import ParamError
    kinds += [ExportError, ImageError, LabelError, ProviderError, NumericalError, ParamError]
    return tuple(kinds)


def friendly(fn):
    """Run a command; expected failures print ``error: ...`` on one line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _expected() as exc:
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def open_bundle(path: Path | None) -> Bundle:
    return Bundle.open(path if path is not None else default_bundle())


def print_json(value) -> None:
    typer.echo(json.dumps(value, indent=1))
