"""From a request (CLI or Python) to images on disk: validate, run, write, summarize.

How a run ends (its status, the image it keeps, the exit code) is :mod:`ortviz.run.outcome`'s.
The output set (every file the run will write, :mod:`ortviz.run.outputset`) is checked by
``run_request`` and locked before the first iteration.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ortviz._util import signals
from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.labels import LabelError, find_class
from ortviz.bundle.reader import Bundle
from ortviz.engine.sessions import Engine
from ortviz.errors import UsageError
from ortviz.objective.positions import default_class, resolve_layer
from ortviz.render import modelspace
from ortviz.render.context import Result
from ortviz.run import imagefiles, options, outcome, outputset, progress
from ortviz.run.guard import GuardedContext, TechniqueFailed  # noqa: F401 (TechniqueFailed: API)
from ortviz.run.imagefiles import ImageError, load_image
from ortviz.run.write import InterruptedAfterWrite, sidecar, write_result
from ortviz.techniques import choices
from ortviz.techniques.registry import discover
from ortviz.techniques.spec import Technique


@dataclass
class RunRequest:
    technique: Technique
    params: dict
    model: Path | None = None
    layer: str | None = None
    targets: list = field(default_factory=list)
    image: Path | np.ndarray | None = None
    seed: int = 0
    provider: str = "auto"
    threads: int | None = None
    step: str = "auto"
    output: Path | None = None
    snapshot_every: int = 0
    progress: bool = True          # see ``ortviz.run.progress``: where and how it is shown
    given: frozenset | None = None  # the parameters the user set (None: those off their default)


def prepare(req: RunRequest, warn=lambda m: print(f"warning: {m}", file=sys.stderr)):
    """Check everything before any work: bundle, layer, classes, photo, output; ``warn`` is
    told what will work but may surprise (snapshots of hundreds of MB)."""
    options.check_common(req)  # seed, threads, empty names: before opening anything
    if req.progress:
        progress.interval()  # ORTVIZ_PROGRESS_SECONDS
    tech = req.technique
    for p in tech.params:  # defaults that depend on other parameters, where none was given
        if p.auto is not None and req.given is not None and p.name not in req.given:
            req.params = {**req.params, p.name: p.validate(p.auto(req.params))}
    bundle = Bundle.open(req.model if req.model is not None else default_bundle())
    options.check_with_bundle(req, bundle.manifest["input"]["shape"])
    choices.check_applies(tech, req.params, req.given)  # after each value's own checks
    layer = None
    if any(n.on == "layers" for n in tech.needs):
        layer = resolve_layer(bundle.layers, req.layer or tech.default_layer or "middle",
                              tech.positions)
    for need in tech.needs:  # each graph where it is read: the logits or the chosen layer
        bundle.graph(need.objective.name, "logits" if need.on == "logits" else layer)
    targets: list[int | None] = [None]
    if any(n.on == "logits" for n in tech.needs):
        try:
            targets = [find_class(bundle.labels, t) for t in req.targets] if req.targets \
                else [default_class(bundle.labels)]
        except LabelError as exc:
            raise UsageError(str(exc)) from None
        options.check_targets(req.targets, targets, bundle.labels)
    if tech.check is not None:
        tech.check(bundle, req.params)
    # the values the run uses, for its totals and the sidecar
    req.params = tech.resolved(req.params, layer, bundle.layers)
    options.check_frames(req)
    photo = None
    if tech.start == "photo":
        if isinstance(req.image, np.ndarray):
            photo = req.image
            if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
                raise UsageError("image array must be HxWx3 uint8 RGB")
        else:
            try:
                photo = load_image(req.image if req.image is not None else sample())
            except ImageError as exc:
                raise UsageError(str(exc)) from None
        options.check_photo(photo, req.params, "<array>" if isinstance(req.image, np.ndarray)
                            else req.image if req.image is not None else sample().name)
    out = Path(req.output) if req.output else Path("out") / f"{tech.name}.png"
    outputset.check_suffix(out)  # the whole set is checked by run_request, which writes it
    if req.params.get("transparency") and out.suffix.lower() not in imagefiles.ALPHA_SUFFIXES:
        raise UsageError(f"--transparency needs an image format with an alpha channel "
                         f"({', '.join(imagefiles.ALPHA_SUFFIXES)}), not {out.suffix or 'no suffix'}")
    heavy = options.snapshot_warning(req, _picture_size(req.params, bundle, photo),
                                     len(result_names(req, bundle, targets)))
    if heavy:
        warn(heavy)
    return bundle, layer, targets, photo, out


def _picture_size(params: dict, bundle, photo) -> tuple[int, int]:
    """The size of the picture a run makes, as far as the common parameters tell: a ``size``
    canvas, a photo brought under ``max_side``, or the model's input."""
    model_hw = tuple(int(s) for s in bundle.manifest["input"]["shape"][2:])
    if params.get("size"):
        return params["size"], params["size"]
    if photo is not None and params.get("max_side"):
        h, w = photo.shape[:2]
        k = min(1.0, params["max_side"] / max(h, w))
        return max(8, round(h * k)), max(8, round(w * k))
    return model_hw


def result_names(req: RunRequest, bundle: Bundle, targets: list) -> list:
    """What each result's file is named after: its class target; or, where a run without
    targets gives n > 1 results (the technique's ``results``), its slot 0..n-1."""
    if targets != [None] or req.technique.results is None:
        return targets
    n = req.technique.results(bundle, req.params)
    return list(range(n)) if n > 1 else [None]


def run_request(req: RunRequest, echo=print, err=lambda m: print(m, file=sys.stderr)) -> int:
    """The CLI's run (its commands enter ``signals.as_interrupts`` once, in ``cli.common``)."""
    bundle, layer, targets, photo, out = prepare(req)
    snapshots, photo_too = req.snapshot_every > 0, req.technique.shows_photo
    files = outputset.plan(out, result_names(req, bundle, targets), snapshots, photo_too)
    inputs = [req.image] if isinstance(req.image, (str, Path)) else []
    outputset.check(files, inputs=inputs, bundle=bundle.root)
    with contextlib.ExitStack() as held:
        held.enter_context(outputset.claim(files))  # before the first iteration
        planned = {f.image for f in files}

        def admit(path: Path) -> None:
            """A result the technique did not declare: checked and locked before writing."""
            if path not in planned:
                more = outputset.plan(path, [None], snapshots, photo_too)
                outputset.check(more, inputs=inputs, bundle=bundle.root)
                held.enter_context(outputset.claim(more))
                planned.add(path)

        return _run_request(req, echo, err, bundle, layer, targets, photo, out, admit)


def _run_request(req, echo, err, bundle, layer, targets, photo, out, admit) -> int:
    try:
        engine = Engine(bundle, provider=req.provider, threads=req.threads, step=req.step)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    engine.session(bundle.manifest["forward"]["file"])  # every run ends with it: load it first
    err(f"{req.technique.name} on {bundle.name} ({engine.provider} execution provider"
        f"{', chosen by auto' if req.provider == 'auto' else ''})")
    code = 0
    for target, slot, result in each_result(req, engine, layer, targets, photo):
        # one objective per batch slot (no class targets): NAME-0.png, NAME-1.png, ...
        path = out if slot is None else out.with_name(f"{out.stem}-{slot}{out.suffix}")
        path = outputset.image_for(path, target, len(targets) if target is not None else 1)
        admit(path)
        code = _finish(req, engine, bundle, layer, target, result, path, echo, err, code)
        if code > 128:
            return code
    return code


def _finish(req, engine, bundle, layer, target, result, path, echo, err, code) -> int:
    """Write one result (at ``path``, planned and locked) and say what happened; the exit code
    so far."""
    late_interrupt = None
    try:
        written = write_result(path, result, sidecar(result, req.technique.name, req.params,
                                                     run_info(req, engine, layer, target), bundle),
                               claimed=True)
    except InterruptedAfterWrite as exc:  # a signal while writing: the files are complete
        written, late_interrupt = exc.written, exc
    seen = (f"; model sees {result.top5[0]['label'].split(',')[0]} "
            f"p={result.top5[0]['probability']:.2f}" if result.top5 else "")
    echo(f"wrote {written[0]} ({result.status}; {result.iterations_done} iterations in "
         f"{result.seconds:.1f}s; objective {result.history[-1] if result.history else float('nan'):.4g}"
         f"{seen})")
    signum = late_interrupt.signum if late_interrupt else \
        signals.last() if result.status == outcome.INTERRUPTED else None
    mine = outcome.exit_code(result.status, signum)
    if signum is not None:
        by = "" if signum == signals.signal.SIGINT else f" by {signals.name(signum)}"
        err(f"interrupted{by}; kept the last good image")
        return mine
    if outcome.blank(result.status):
        err(result.status)
    elif mine:
        err(f"error: {result.status}; kept the last good image")
    return mine or code


def run_info(req: RunRequest, engine: Engine, layer, target) -> dict:
    image = None
    if req.technique.start == "photo":
        image = "<array>" if isinstance(req.image, np.ndarray) else str(req.image or sample())
    return {"layer": layer, "seed": req.seed, "provider": engine.provider, "threads": req.threads,
            "step": engine.step,
            "target": None if target is None else {"class": target,
                                                   "label": engine.bundle.labels[target]},
            "image": image}


def each_result(req: RunRequest, engine: Engine, layer, targets: list, photo):
    """The run's results in order, the technique run once per chunk of targets (up to the
    graphs' batch): ``(target, slot, result)``; ``slot`` numbers the results of a run without
    class targets that gives several (one objective per batch slot), else it is None."""
    for chunk in chunks(targets, engine.image_shape[0]):
        got = run_one(req, engine, layer, chunk, photo)
        for k, (target, result) in enumerate(zip(chunk or [None] * len(got), got)):
            yield target, (k if not chunk and len(got) > 1 else None), result


def chunks(targets: list, batch: int) -> list[list]:
    """Class targets in runs of up to the graphs' batch; ``[[]]`` (one run) for no targets."""
    if targets == [None]:
        return [[]]
    return [targets[i:i + batch] for i in range(0, len(targets), batch)]


def run_one(req: RunRequest, engine: Engine, layer, targets: list, photo) -> list[Result]:
    """Run the technique once: one result per target (a batch), or one for photo techniques."""
    tech = req.technique
    iterations = req.params.get("iterations", 0) * req.params.get("octaves", 1)
    bar = progress.start(tech.name, iterations, req.progress)

    ctx = GuardedContext(engine, np.random.default_rng(req.seed), iterations, layer=layer,
                         targets=list(targets), photo=photo, snapshot_every=req.snapshot_every,
                         progress=lambda t, n, loss: bar.update(t, loss),
                         show_photo=tech.shows_photo,
                         fit=req.params["fit"] if req.params.get("fit") in modelspace.FITS else "crop")
    try:
        return outcome.run(tech, ctx, req.params, lambda: _origin(tech))
    finally:
        bar.close()


def _origin(tech: Technique) -> str:
    """``package version`` of the plugin that provides ``tech``, for error messages."""
    try:
        for p in discover():
            if p.technique is not None and p.technique.name == tech.name:
                return f"plugin package {p.package} {p.version}"
    except Exception:
        pass
    return f"module {getattr(tech.run, '__module__', '?')}"
