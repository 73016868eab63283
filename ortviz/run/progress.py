"""Progress of a run, wherever it is watched.

- a terminal (stderr is a tty): a rich bar with the objective, it/s and the time left, cleared
  at the end;
- a Jupyter kernel with ``tqdm`` installed (optional, ``pip install tqdm`` or the ``notebook``
  extra): a ``tqdm.auto`` bar, a widget where ``ipywidgets`` is installed, a text bar otherwise;
- anything else (a log file, ``nohup``, a pipe, a notebook without tqdm): a plain line on
  stderr every ``ORTVIZ_PROGRESS_SECONDS`` seconds (default 5; 0: every iteration), and a last
  line at the end when any was printed, so a short run stays quiet::

      class-visualization: 120/512 iterations, objective 12.31, 14.2 it/s, about 28 s left

- ``enabled=False`` (the API's ``progress=False``): nothing.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ortviz.errors import UsageError

DEFAULT_SECONDS = 5.0


def interval() -> float:
    """Seconds between plain progress lines: ``ORTVIZ_PROGRESS_SECONDS`` or the default."""
    text = os.environ.get("ORTVIZ_PROGRESS_SECONDS", "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"ORTVIZ_PROGRESS_SECONDS must be a number of seconds >= 0, got {text!r}")
    return value


class Off:
    """No progress shown."""

    def update(self, done: int, loss: float) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """A plain line every ``every`` seconds on ``stream`` (for logs and pipes)."""

    def __init__(self, name: str, total: int | None, stream, every: float, clock=time.perf_counter):
        self.name, self.total, self.stream, self.every, self.clock = name, total, stream, every, clock
        self.t0 = self.last = clock()
        self.done, self.loss, self.printed = 0, float("nan"), 0

    def update(self, done: int, loss: float) -> None:
        self.done, self.loss = done, loss
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if self.printed:  # the log ends with where the run got to
            self._line(self.clock(), final=True)

    def _line(self, now: float, final: bool = False) -> None:
        spent = max(now - self.t0, 1e-9)
        speed = self.done / spent
        of = f"/{self.total}" if self.total else ""
        text = f"{self.name}: {self.done}{of} iterations, objective {self.loss:.4g}, {speed:.1f} it/s"
        if final:
            text += f", {spent:.1f} s"
        elif self.total and speed > 0:
            text += f", about {duration((self.total - self.done) / speed)} left"
        print(text, file=self.stream, flush=True)
        self.printed += 1


class Rich:
    """rich's bar on a terminal (objective value, it/s, time left); gone when the run ends."""

    def __init__(self, name: str, total: int | None):
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"),
                            TextColumn("objective {task.fields[loss]:.4g}"),
                            TextColumn("{task.fields[speed]} it/s"), TimeRemainingColumn(),
                            transient=True)
        self.bar.start()
        self.task = self.bar.add_task(name, total=total or None, loss=float("nan"), speed="-")
        self.t0 = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        speed = f"{done / max(time.perf_counter() - self.t0, 1e-9):.1f}"
        self.bar.update(self.task, completed=done, loss=loss, speed=speed)

    def close(self) -> None:
        self.bar.stop()


class Tqdm:
    """tqdm.auto's bar in a notebook (a widget with ipywidgets, text without)."""

    def __init__(self, name: str, total: int | None, tqdm):
        self.bar = tqdm(total=total or None, desc=name, unit="it")

    def update(self, done: int, loss: float) -> None:
        self.bar.set_postfix(objective=f"{loss:.4g}", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def start(name: str, total: int | None, enabled: bool = True, stream=None):
    """The progress display for a run of ``total`` iterations (see the module)."""
    if not enabled:
        return Off()
    every = interval()  # checked before the run: a bad value is a usage error
    stream = sys.stderr if stream is None else stream
    if _isatty(stream):
        return Rich(name, total)
    tqdm = _notebook_tqdm()
    if tqdm is not None:
        return Tqdm(name, total, tqdm)
    return Lines(name, total, stream, every)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def in_notebook() -> bool:
    """Inside a Jupyter kernel (not a terminal IPython)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")


def _notebook_tqdm():
    """``tqdm.auto.tqdm`` inside a Jupyter kernel where tqdm is installed, else None."""
    if not in_notebook():
        return None
    try:
        with warnings.catch_warnings():  # tqdm's "IProgress not found": its text bar works too
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm  # optional: only where a notebook has it
    except ImportError:
        return None
    return tqdm


def duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m`` (also the atlas's)."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
