"""Rendering one job through the public Python API, wherever it runs.

A job is one unit, or (on a batched bundle) several channel or class units with the same
parameters and seed that share one run, a picture per batch slot. The function here runs in
the atlas's own process, in a local worker process or in a Ray task alike: it loads the model
once per process (``ortviz.load``) and calls ``model.run(technique, ...)``; the pictures go
back to the caller, which writes them, so workers never write into the site and a worker that
is stopped leaves nothing behind. Photos travel as arrays, so a worker on another machine needs
the bundle but not the photos.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import numpy as np

from ortviz.api import load
from ortviz.atlas.plan import Unit
from ortviz.errors import first_line
from ortviz.run.outcome import finished
from ortviz.techniques.registry import techniques

_MODELS: dict = {}


@dataclass
class Job:
    units: list[Unit]
    photo: np.ndarray | None = None   # dream and inversion: the photo, HxWx3 uint8


@dataclass
class Outcome:
    units: list[Unit]
    pictures: list = field(default_factory=list)   # one Picture per unit when it worked
    error: str | None = None                       # why not, in one line
    interrupted: bool = False
    seconds: float = 0.0


def model(bundle: str, provider: str, threads: int | None):
    """The process's model for these settings, loaded on first use."""
    key = (bundle, provider, threads)
    if key not in _MODELS:
        _MODELS[key] = load(bundle, provider=provider, threads=threads)
    return _MODELS[key]


def worker_setup(bundle: str, provider: str, threads: int | None) -> None:
    """A local worker process: Ctrl-C is the atlas's to handle (it stops the workers), and the
    model is loaded before the first job arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    model(bundle, provider, threads)


def _call(m, job: Job) -> list:
    u = job.units[0]
    defaults = techniques()[u.technique].defaults()
    # what the atlas sets, as a user of the API would: the rest are the technique's own
    # defaults (some depend on other parameters, and an option the chosen --param does not
    # read is refused when given); the atlas shows its own progress
    params = {k: v for k, v in u.params.items() if k not in defaults or v != defaults[k]}
    if u.kind == "diversity":  # one run: the set's K pictures, one per unit
        got = m.run(u.technique, layer=u.layer, seed=u.seed, progress=False, **params)
    elif u.kind in ("channel", "negative"):  # the objective is in the params; a list: one per slot
        objectives = [v.params["objective"] for v in job.units]
        got = m.run(u.technique, layer=u.layer, seed=u.seed, progress=False, **dict(
            params, objective=objectives if len(objectives) > 1 else objectives[0]))
    elif u.kind == "class":  # a list of targets shares one run of a batched bundle
        targets = [v.index for v in job.units]
        got = m.run(u.technique, target=targets if len(targets) > 1 else targets[0], seed=u.seed,
                    progress=False, **params)
    else:
        got = m.run(u.technique, image=job.photo, layer=u.layer, seed=u.seed, progress=False,
                    **params)
    got = got if isinstance(got, list) else [got]
    if len(got) != len(job.units):
        raise RuntimeError(f"{u.technique} gave {len(got)} pictures for {len(job.units)} units")
    return got


def run_job(job: Job, bundle: str, provider: str = "cpu", threads: int | None = None) -> Outcome:
    """Render a job; failures come back as a one-line reason, never as an exception (except
    Ctrl-C in the atlas's own process)."""
    t0 = time.perf_counter()
    out = Outcome(job.units)
    try:
        pictures = _call(model(bundle, provider, threads), job)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {first_line(exc)}"
        out.seconds = time.perf_counter() - t0
        return out
    statuses = {p.status for p in pictures}
    if "interrupted" in statuses:
        out.interrupted = True
    elif not all(finished(s) for s in statuses):   # a blank (dead) unit's picture is kept
        out.error = next(s for s in (p.status for p in pictures) if not finished(s))
    else:
        for p in pictures:
            p.result.x = None          # the caller needs the image and the sidecar only
        out.pictures = pictures
    out.seconds = time.perf_counter() - t0
    return out
