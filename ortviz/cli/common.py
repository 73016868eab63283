"""What every command shares: one-line errors instead of tracebacks, bundle resolution.

Exit codes: 0 done; 2 bad input (a one-line ``error:`` naming it, nothing written); 1 a run that
failed or stopped (NaN/Inf, a technique's exception, a system error such as a full disk);
130 interrupted (Ctrl-C). An exception nobody anticipated is still one line, marked
``unexpected``; ``ORTVIZ_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import typer

from ..bundle import Bundle, BundleError
from ..defaults import default_bundle
from ..errors import UsageError, first_line


def _expected() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [UsageError, BundleError, FileExistsError,
                                        FileNotFoundError, PermissionError, IsADirectoryError,
                                        NotADirectoryError]
    from ..export.graph import ExportError
    from ..images import ImageError
    from ..labels import LabelError
    from ..providers import ProviderError
    from ..render import NumericalError
    from ..technique import ParamError
    kinds += [ExportError, ImageError, LabelError, ProviderError, NumericalError, ParamError]
    return tuple(kinds)


def friendly(fn):
    """Run a command; failures print ``error: ...`` on one line (exit codes above)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..render import NumericalError
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except NumericalError as exc:  # a run that stopped with nothing good to keep
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(1) from None
        except _expected() as exc:
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:  # the system's: disk full, read-only file system, ...
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("ORTVIZ_DEBUG"):
                raise
            typer.echo(f"error: unexpected {type(exc).__name__}: {first_line(exc)} "
                       "(ORTVIZ_DEBUG=1 shows the traceback)", err=True)
            raise typer.Exit(1) from None

    return wrapper


def open_bundle(path: Path | None) -> Bundle:
    return Bundle.open(path if path is not None else default_bundle())


def print_json(value) -> None:
    typer.echo(json.dumps(value, indent=1))
