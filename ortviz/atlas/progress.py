"""Progress on stderr: counts, the unit just finished, elapsed time and an ETA.

On a terminal one line is rewritten in place; otherwise (a log, a CI job) one line per
finished job. The ETA is the mean wall time per unit finished so far in this run, times the
units left (with several workers that already counts their overlap).
"""

from __future__ import annotations

import sys
import time

from ..progress import duration  # noqa: F401 (also imported from here)


class Progress:
    def __init__(self, total: int, skipped: int, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.skipped = total, skipped
        self.done = self.failed = 0
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def start(self, workers: str) -> None:
        todo = self.total - self.skipped
        self._line(f"atlas: {self.total} pictures, {self.skipped} already rendered, "
                   f"{todo} to render on {workers}", final=True)

    def update(self, units: list, error: str | None) -> None:
        self.done += len(units)
        if error:
            self.failed += len(units)
        elapsed = time.perf_counter() - self.t0
        left = self.total - self.skipped - self.done
        eta = elapsed / self.done * left if self.done else 0.0
        what = units[0].id + (f" (+{len(units) - 1})" if len(units) > 1 else "")
        state = f"FAILED: {error}" if error else "ok"
        self._line(f"[{self.skipped + self.done}/{self.total}] {what}: {state}; "
                   f"{duration(elapsed)} elapsed, ETA {duration(eta)}"
                   + (f"; {self.failed} failed" if self.failed else ""), final=bool(error))

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
