"""How a run ends: its status, the image it keeps, and the CLI's exit code, decided here only.

A run ends with one of:

- ``complete``: the technique went to its end;
- ``blank: ...``: it went to its end, but the unit never responded (a dead unit's flat picture;
  the technique sets it per slot);
- ``stopped: <reason>``: a non-finite value, the technique's own failure (:mod:`.guard`), or the
  bundle changing under the run; the last good image is kept;
- ``interrupted``: Ctrl-C or a signal that acts as one (:mod:`ortviz._util.signals`); the last
  good image is kept.

Where there is no good image to keep, the run raises instead (a ``NumericalError``, or the
interrupt itself), and nothing is written.
"""

from __future__ import annotations

import time

import numpy as np

from ortviz.bundle.reader import BundleError
from ortviz.errors import NumericalError, first_line
from ortviz.render.context import Context, Result, results
from ortviz.run.guard import guarded
from ortviz.techniques.spec import Technique

COMPLETE, INTERRUPTED = "complete", "interrupted"


def blank(status: str) -> bool:
    """A finished picture of a unit that never responded (``blank: ...``)."""
    return status.startswith("blank")


def finished(status: str) -> bool:
    """The run went to its end: ``complete`` or ``blank: ...``."""
    return status == COMPLETE or blank(status)


def stopped(reason) -> str:
    return f"stopped: {reason}"


def run(tech: Technique, ctx: Context, params: dict, origin) -> list[Result]:
    """Run ``tech`` guarded (``origin()`` names its plugin) and end it as the module says: one
    result per batch slot."""
    start = time.perf_counter()
    run_guarded = guarded(tech, origin)
    interrupt = None
    try:
        status = COMPLETE
        try:
            x = run_guarded(ctx, **params)
            if not np.isfinite(x).all():
                raise NumericalError("the final image holds non-finite values")
        except NumericalError as exc:
            status, x = stopped(exc), ctx.last_good
        except KeyboardInterrupt as exc:
            status, x, interrupt = INTERRUPTED, ctx.last_good, exc
        if x is None:  # nothing good to keep; a Ctrl-C stays a Ctrl-C
            if interrupt is not None:
                raise interrupt
            raise NumericalError(f"{tech.name}: {status}; no good image to keep")
        return results(ctx, x, status, time.perf_counter() - start)
    except KeyboardInterrupt:  # after the loop, while classifying: keep the last good image
        if ctx.last_good is None:
            raise
        return results(ctx, ctx.last_good, INTERRUPTED, time.perf_counter() - start, classify=False)
    except BundleError as exc:  # e.g. the bundle was re-exported during a long run
        if ctx.last_good is None:
            raise
        return results(ctx, ctx.last_good, stopped(first_line(exc)), time.perf_counter() - start,
                       classify=False)


def exit_code(status: str, signum: int | None) -> int:
    """The CLI's exit code for a written result: 0 finished, 128 + the signal interrupted (or a
    signal during the write: ``signum``), 1 stopped."""
    if status == INTERRUPTED or signum is not None:
        return 128 + signum
    return 0 if finished(status) else 1
