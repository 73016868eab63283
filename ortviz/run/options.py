"""The common options of a run, checked before any work, each refusal one line.

A technique's own parameters are checked by their declared checks (made safe and finite in
``plugins``); here: the options every technique has, and what needs the bundle to judge.

- ``--seed``: 0 .. 2**64-1 (numpy's generator takes no negative seed).
- ``--threads``: 1 .. 4x this machine's CPUs (each thread costs memory; 100000 was killed).
- ``--step``: auto, numpy or graph (:data:`ortviz.engine.STEPS`).
- ``--layer``, ``--class``, ``--provider``: not empty.
- ``--class``: no class twice (``flamingo`` and ``130`` are one class).
- ``--snapshot-every``: at most :data:`MAX_FRAMES` frames for the run (``check_frames``).
- ``jitter`` (the shared circular shift of ``imaging``): less than the model input's shorter side.
- the photo: its shorter side at least :data:`MIN_SIDE` pixels, also once scaled to ``max_side``
  (DeepDream's longest side): a 1x1 image dreamed as an 8x8 one and a 3000x3 panorama as 512x8.
"""

from __future__ import annotations

import os

from ortviz.engine import STEPS
from ortviz.errors import UsageError

MAX_FRAMES = 1000
MIN_SIDE = 8  # pixels: the smallest input a bundle can have (ortviz export --size)


def max_threads() -> int:
    return 4 * (os.cpu_count() or 1)


def check_common(req) -> None:
    """What can be judged without the bundle."""
    if isinstance(req.seed, bool) or not isinstance(req.seed, int) or not 0 <= req.seed < 2 ** 64:
        raise UsageError(f"--seed must be an integer from 0 to 2**64-1, got {req.seed!r}")
    if req.threads is not None:
        if isinstance(req.threads, bool) or not isinstance(req.threads, int) or \
                not 1 <= req.threads <= max_threads():
            raise UsageError(f"--threads must be from 1 to {max_threads()} (4 x this machine's "
                             f"CPUs), got {req.threads!r}")
    if req.step not in STEPS:
        raise UsageError(f"--step must be one of {', '.join(STEPS)}, got {req.step!r}")
    for flag, value in (("--layer", req.layer), ("--provider", req.provider)):
        if value is not None and not str(value).strip():
            raise UsageError(f"{flag} must not be empty")
    for t in req.targets or []:
        if isinstance(t, str) and not t.strip():
            raise UsageError("--class must not be empty")
    every = req.snapshot_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise UsageError(f"--snapshot-every must be a count of iterations (0: none), got {every!r}")


def check_frames(req) -> None:
    """At most :data:`MAX_FRAMES` frames (with the technique's parameters resolved)."""
    every = req.snapshot_every
    total = req.params.get("iterations", 0) * req.params.get("octaves", 1)
    if every and total // every > MAX_FRAMES:
        raise UsageError(f"--snapshot-every {every} keeps {total // every} frames of {total} "
                         f"iterations; at most {MAX_FRAMES} (use --snapshot-every "
                         f"{-(-total // MAX_FRAMES)} or more)")


SNAPSHOT_WARN_BYTES = 100_000_000


def snapshot_bytes(frames: int, hw, results: int = 1) -> int:
    """About how many bytes ``frames`` snapshots of an ``hw`` picture write, for each of
    ``results``: each frame as a PNG and in the contact sheet (3 bytes a pixel: the frames of
    an optimization are noisy and PNG gains little), and in the GIF (1 byte a pixel)."""
    return 7 * int(hw[0]) * int(hw[1]) * frames * results


def snapshot_warning(req, hw, results: int = 1) -> str | None:
    """A warning, before the run, for snapshots that would write more than about 100 MB."""
    every = req.snapshot_every
    if not every:
        return None
    total = req.params.get("iterations", 0) * req.params.get("octaves", 1)
    frames = total // every + 1  # and the result
    size = snapshot_bytes(frames, hw, results)
    if size <= SNAPSHOT_WARN_BYTES:
        return None
    fits = next((k for k in range(every + 1, total + 1)
                 if snapshot_bytes(total // k + 1, hw, results) <= SNAPSHOT_WARN_BYTES), None)
    return (f"--snapshot-every {every} keeps {frames} frames of {hw[1]}x{hw[0]}"
            f"{f' for each of {results} pictures' if results > 1 else ''}: about "
            f"{size / 1e6:.0f} MB of frames, GIF and contact sheet, and a slower run"
            + (f"; --snapshot-every {fits} stays under {SNAPSHOT_WARN_BYTES // 1_000_000} MB"
               if fits else ""))


def check_targets(given: list, resolved: list, labels: list[str]) -> None:
    """No class asked for twice, under any of its names."""
    first: dict[int, object] = {}
    for g, c in zip(given, resolved):
        if c in first:
            raise UsageError(f"--class {g} and --class {first[c]} are the same class {c} "
                             f"({labels[c].split(',')[0]}); give each class once")
        first[c] = g


def check_with_bundle(req, image_shape) -> None:
    """What needs the model's input size."""
    side = min(int(image_shape[2]), int(image_shape[3]))
    jitter = req.params.get("jitter")
    if isinstance(jitter, int) and not isinstance(jitter, bool) and jitter >= side:
        raise UsageError(f"--jitter {jitter} must be less than the model input's side ({side} "
                         "pixels)")


def check_photo(photo, params: dict, name) -> None:
    """The photo's shorter side is at least :data:`MIN_SIDE` pixels, and stays so once the photo
    is scaled to ``max_side`` (a parameter of DeepDream: the result's longest side)."""
    h, w = (int(n) for n in photo.shape[:2])
    if min(h, w) < MIN_SIDE:
        raise UsageError(f"photo {name} is {w}x{h} pixels: its shorter side is below "
                         f"{MIN_SIDE} pixels, the smallest input a model has; use a larger photo")
    side = params.get("max_side")
    if isinstance(side, bool) or not isinstance(side, int):
        return
    k = min(1.0, side / max(h, w))
    sh, sw = round(h * k), round(w * k)
    if min(sh, sw) >= MIN_SIDE:
        return
    need = int((MIN_SIDE - 0.5) * max(h, w) / min(h, w))
    while min(round(h * need / max(h, w)), round(w * need / max(h, w))) < MIN_SIDE:
        need += 1
    raise UsageError(f"--max-side {side} makes the {w}x{h} photo {name} {sw}x{sh} pixels, its "
                     f"shorter side below {MIN_SIDE}; use --max-side {need} or more, or crop it")
