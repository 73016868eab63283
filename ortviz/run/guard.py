"""A technique's run, guarded: whatever it does, the run ends with a status and an image.

A technique (a plugin's above all) may raise anything, call ``sys.exit``, return ``None`` or an
array of another shape, or report garbage to ``ctx.report``. Each of these becomes a
:class:`TechniqueFailed` naming the technique and its plugin package, which takes the render's
stop path: ``stopped: ...`` and the last good image. A ``KeyboardInterrupt`` stays an interrupt.
"""

from __future__ import annotations

import numbers

import numpy as np

from ortviz.bundle.reader import BundleError
from ortviz.errors import first_line
from ortviz.render.context import Context, NumericalError
from ortviz.techniques.spec import Technique

MAX_PIXELS = 50_000_000  # per image, as for photos read from disk


class TechniqueFailed(NumericalError):
    """A technique's exception or bad value, named with its plugin. It takes the render's stop
    path (a ``NumericalError``): the run ends ``stopped: ...`` with the last good image."""


def image_problem(ctx: Context, x) -> str | None:
    """What is wrong with ``x`` as a batch of images for ``ctx``, or None."""
    if not isinstance(x, np.ndarray):
        return f"{type(x).__name__}, not an image batch (a numpy array)"
    want = f"({ctx.batch}, 3, H, W)"
    if x.ndim != 4 or x.shape[0] != ctx.batch or x.shape[1] != 3 or min(x.shape) < 1:
        return f"an array of shape {tuple(x.shape)}, not {want}"
    if x.shape[2] * x.shape[3] > MAX_PIXELS:
        return f"an image of {x.shape[3]}x{x.shape[2]} pixels, over the limit of {MAX_PIXELS}"
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        return f"an array of {x.dtype}, not of numbers"
    return None


class GuardedContext(Context):
    """The context, refusing what a technique reports that is not an iteration's image."""

    def report(self, t: int, loss: float, x: np.ndarray) -> None:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"ctx.report got iteration {t!r}, not a count from 0")
        if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
            if not (isinstance(loss, np.ndarray) and loss.size == 1 and np.issubdtype(loss.dtype, np.number)):
                raise ValueError(f"ctx.report got a loss of type {type(loss).__name__}, not a number")
        why = image_problem(self, x)
        if why:
            raise ValueError(f"ctx.report got {why}")
        super().report(int(t), float(np.asarray(loss).reshape(())), np.asarray(x, np.float32))


def guarded(tech: Technique, origin):
    """``tech.run`` wrapped as described in the module; ``origin()`` names its plugin."""

    def run(ctx, **params):
        try:
            x = tech.run(ctx, **params)
        except KeyboardInterrupt:
            raise
        except (NumericalError, BundleError):
            raise
        except (Exception, SystemExit, GeneratorExit) as exc:
            what = f"{type(exc).__name__}: {first_line(exc)}" if str(exc) else type(exc).__name__
            raise TechniqueFailed(f"technique {tech.name} ({origin()}) failed: {what}") from exc
        why = image_problem(ctx, x)
        if why:
            raise TechniqueFailed(f"technique {tech.name} ({origin()}) returned {why}")
        return np.asarray(x, np.float32)

    return run
