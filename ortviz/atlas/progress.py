"""Progress on stderr: what is queued (up front), counts, the unit just finished, elapsed time
and an ETA.

On a terminal one line is rewritten in place; otherwise (a log, a CI job) one line per
finished job. The units cost very different times (a channel of the first layer is a short
network and 256 iterations; a class, the whole network and 512; a dream, tiles of a 512-pixel
photo over octaves), so the ETA weighs each by :func:`work`: the wall time per unit of work done
so far in this run, times the work left (with several workers that counts their overlap).
"""

from __future__ import annotations

import sys
import time

from ortviz.run.progress import duration  # noqa: F401 (also imported from here)


def work(unit, depth: float, model_hw, photo_hw=None) -> float:
    """A unit's relative cost: gradient calls (iterations over the octaves; DeepDream's tiles of
    the photo over its octaves; a diversity set's share) times the share of the network they
    run (``depth``: the layer's place in the layer table, 0..1; classes run all of it), plus a
    fixed part per call for the parameterization and transforms."""
    p = unit.params
    calls = float(p.get("iterations", 1)) * p.get("crops", 1)
    if unit.kind == "dream" and photo_hw is not None:
        h, w = photo_hw
        k = min(1.0, p.get("max_side", max(h, w)) / max(h, w))
        area, model_area = h * w * k * k, model_hw[0] * model_hw[1]
        scale = p.get("octave_scale", 1.4)
        octaves = p.get("octaves", 1) if p.get("param", "pixel") == "pixel" else 1
        calls *= sum(max(1.0, area / scale ** (2 * i) / model_area) for i in range(octaves))
    else:  # one model-sized view per call at every octave (feature inversion's coarse to fine)
        calls *= p.get("octaves", 1)
    if unit.kind == "diversity":  # a set of 3 measured at 4.2x a single picture: 1.4x each
        calls *= 1.4
    share = 1.0 if unit.kind == "class" else depth
    return calls * (0.2 + share)


class Progress:
    def __init__(self, total: int, skipped: int, stream=None, weights: dict | None = None):
        """``weights``: ``{unit id: work}`` of the units to render (default: 1 each)."""
        self.stream = stream or sys.stderr
        self.total, self.skipped = total, skipped
        self.done = self.failed = 0
        self.weights = weights or {}
        self.work_left = sum(self.weights.values()) or float(total - skipped)
        self.work_done = 0.0
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def start(self, workers: str, kinds: dict | None = None) -> None:
        """The up-front line: how many pictures, of which kinds, how many to render, where."""
        todo = self.total - self.skipped
        of = f" ({', '.join(f'{n} {k}' for k, n in kinds.items())})" if kinds else ""
        self._line(f"atlas: {self.total} pictures{of}, {self.skipped} already rendered, "
                   f"{todo} to render on {workers}; an ETA follows the first pictures",
                   final=True)

    def update(self, units: list, error: str | None) -> None:
        self.done += len(units)
        if error:
            self.failed += len(units)
        done = sum(self.weights.get(u.id, 1.0) for u in units)
        self.work_done += done
        self.work_left = max(0.0, self.work_left - done)
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.work_done * self.work_left if self.work_done else 0.0
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
