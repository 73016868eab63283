"""What every command shares: one-line errors instead of tracebacks, bundle resolution.

Exit codes: 0 done; 2 bad input (a one-line ``error:`` naming it, nothing written); 1 a run that
failed or stopped (NaN/Inf, a technique's exception, a system error such as a full disk);
128 + the signal for a run ended by one (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; see ``signals``);
141 (128 + SIGPIPE), printing nothing, when the reader of the output went away
(``ortviz labels | head -1``). Without onnxruntime (a wheel installed with no extra) a command
that needs it says which extras to install, in one line, exit 1; ``info``, ``layers``,
``labels`` and ``plugins`` work without it. An exception nobody anticipated is still one line,
marked ``unexpected``; ``ORTVIZ_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import sys
from pathlib import Path

import typer
import typer.core

from ortviz._util import signals
from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.labels import LabelError
from ortviz.bundle.reader import Bundle, BundleError
from ortviz.errors import NumericalError, ProviderError, UsageError, first_line
from ortviz.export.graph import ExportError
from ortviz.run.imagefiles import ImageError
from ortviz.techniques.registry import hidden_by_allow_list
from ortviz.techniques.spec import ParamError

# the built-in techniques' short command names (``ortviz class-viz`` = ``ortviz run class-visualization``)
SHORT = {"class-viz": "class-visualization", "invert": "feature-inversion", "dream": "deepdream",
         "feature-viz": "feature-visualization"}


# errors that are bad input (exit 2); none of their modules imports onnxruntime, so ``info``,
# ``layers`` and ``labels`` work without it
BAD_INPUT = (UsageError, BundleError, FileExistsError, FileNotFoundError, PermissionError,
             IsADirectoryError, NotADirectoryError, ExportError, ImageError, LabelError,
             ProviderError, ParamError)


EXTRAS = "install ortviz with one of the extras [cpu], [gpu] or [openvino], e.g. pip install 'ortviz[cpu]'"


def runtime_missing(exc: ImportError) -> str | None:
    """The line for an ImportError of onnxruntime (a wheel installed without an extra), or None
    for any other module."""
    name = exc.name or ""
    if name != "onnxruntime" and not name.startswith("onnxruntime."):
        return None
    if isinstance(exc, ModuleNotFoundError) and name == "onnxruntime":
        return f"ONNX Runtime is not installed; {EXTRAS} ([export] for ortviz export)"
    return f"ONNX Runtime cannot be imported ({first_line(exc)}); reinstall it: {EXTRAS}"


def reader_gone() -> bool:
    """Whether stdout or stderr is a pipe whose reader has gone (``ortviz labels | head -1``):
    poll reports an error on the write end of such a pipe. Where poll is missing, assume so."""
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    for stream in (sys.stdout, sys.stderr):
        try:
            poller.register(stream.fileno(), select.POLLOUT)
        except (AttributeError, OSError, ValueError):  # no descriptor (a test's capture)
            continue
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def quiet_exit() -> typer.Exit:
    """End as Unix tools do when their reader goes away: nothing more printed (stdout and
    stderr go to /dev/null, so the interpreter's final flush cannot complain), exit 141
    (128 + SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return typer.Exit(141)


def _unexpected(exc: Exception) -> typer.Exit:
    if os.environ.get("ORTVIZ_DEBUG"):
        raise exc
    typer.echo(f"error: unexpected {type(exc).__name__}: {first_line(exc)} "
               "(ORTVIZ_DEBUG=1 shows the traceback)", err=True)
    return typer.Exit(1)


def friendly(fn):
    """Run a command; failures print ``error: ...`` on one line (exit codes above)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with signals.as_interrupts():  # SIGTERM, SIGHUP... end a command as Ctrl-C does
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except NumericalError as exc:  # a run that stopped with nothing good to keep
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(1) from None
        except BAD_INPUT as exc:
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signals.signal.SIGINT)
            by = "" if signum == signals.signal.SIGINT else f" by {signals.name(signum)}"
            typer.echo(f"interrupted{by}", err=True)
            raise typer.Exit(signals.exit_code(exc)) from None
        except ImportError as exc:  # a wheel installed without an ONNX Runtime extra
            line = runtime_missing(exc)
            if line is None:
                raise _unexpected(exc) from None
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:  # the system's: disk full, read-only file system, ...
            if isinstance(exc, BrokenPipeError) and reader_gone():
                raise  # the group ends quietly (OneLineErrors)
            typer.echo(f"error: {first_line(exc)}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            raise _unexpected(exc) from None

    return wrapper


class OneLineErrors(typer.core.TyperGroup):
    """The ``ortviz`` group: a usage error (unknown command or option, a value typer cannot
    read) is one ``error:`` line on stderr with exit 2, not click's multi-line box; a command
    that ``ORTVIZ_PLUGINS`` hides says so."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        click = typer.core._click
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, as before
            if not typer.core.HAS_RICH:  # rich printed it already
                exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            typer.echo(f"error: {usage_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except typer.core.Abort:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def get_params(self, ctx):
        return tidy_params(super().get_params(ctx))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            tidy_help(cmd, ctx)
        return cmd

    # Every command, its help and the group's: a reader that went away ends the run quietly.
    def make_context(self, *args, **kwargs):
        return _quiet_when_reader_gone(super().make_context, *args, **kwargs)

    def invoke(self, ctx):
        return _quiet_when_reader_gone(super().invoke, ctx)


def tidy_params(params: list) -> list:
    """Help shows no Python types: a flag gets no value label (typer writes ``<bool>``), a
    repeatable option its metavar or ``<value>`` (not ``<list[str]>``)."""
    for p in params:
        if p.metavar is None and getattr(p, "is_flag", False):
            p.metavar = ""
        elif p.metavar is None and getattr(p, "multiple", False):
            p.metavar = "<value>"
    return params


def tidy_help(cmd, ctx) -> None:
    """:func:`tidy_params` on a command and, for a group, on every command under it."""
    tidy_params(cmd.get_params(ctx))  # makes the command's own help option too
    for sub in getattr(cmd, "commands", {}).values():
        tidy_help(sub, ctx)


def _quiet_when_reader_gone(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except BrokenPipeError:
        if not reader_gone():
            raise
        raise quiet_exit() from None


def usage_line(exc) -> str:
    """A click usage error as one line, with the ``ORTVIZ_PLUGINS`` hint where it applies."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command_path:
        msg += f" (see {ctx.command_path} --help)"
    hidden = re.match(r"No such command '([^']+)'", exc.format_message())
    if hidden:
        why = hidden_by_allow_list(SHORT.get(hidden.group(1), hidden.group(1)))
        if why:
            msg += f"; {why}"
    return msg


def open_bundle(path: Path | None) -> Bundle:
    return Bundle.open(path if path is not None else default_bundle())


def print_json(value) -> None:
    typer.echo(json.dumps(value, indent=1))
