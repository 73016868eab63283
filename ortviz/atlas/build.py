"""Building an atlas: plan, skip what is done, render the rest, write the site.

Order of work: open the bundle and check the whole request (the plan) before anything is
written; hash the units (keys); skip those already rendered with the same key (unless
``force``); run the rest as jobs on the chosen executor, writing each picture (image, then its
sidecar, each renamed into place) in this process as it comes back; then the dataset examples
and the site from what is on disk. A Ctrl-C stops the work, keeps every picture finished so
far, and still writes the site for them; the next run resumes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ortviz.api import Model
from ortviz.atlas import executors, site
from ortviz.atlas.examples import layer_means
from ortviz.atlas.keys import assign_keys, is_done
from ortviz.atlas.plan import Spec, Unit, make_plan, photo_files
from ortviz.atlas.progress import Progress, duration, work
from ortviz.atlas.work import Job
from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.errors import UsageError
from ortviz.run import options, outputset
from ortviz.run.imagefiles import load_image
from ortviz.run.write import InterruptedAfterWrite


@dataclass
class Options:
    out: Path
    spec: Spec = field(default_factory=Spec)
    bundle: Path | None = None
    photos: Path | None = None          # folder; None: the bundled samples
    examples: int = 4                   # dataset examples per channel
    force: bool = False
    workers: int = 1
    executor: str = "local"
    threads: int | None = None
    provider: str = "auto"
    ray_address: str | None = None


@dataclass
class Report:
    total: int
    skipped: int
    rendered: int
    failures: list[tuple[str, str]]
    interrupted: bool
    seconds: float


def _check_out(out: Path) -> None:
    """The output is a new or empty directory, or an atlas made before (never anything else:
    the atlas would write into someone's files)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "atlas.json").is_file():
        raise UsageError(f"-o {out} is a non-empty directory that holds no atlas; "
                         "choose a new or empty one")
    outputset.check_folder(out, f"-o {out}", out / "atlas.json")  # as the technique commands


def jobs_of(units: list[Unit], batch: int, photos: dict) -> list[Job]:
    """One job per unit; on a batched bundle, channel, negative and class units share a job
    (one run, a picture per batch slot) up to the bundle's batch; a channel's diversity set is
    one job (one run makes its K pictures)."""
    jobs, batch = [], max(1, batch)
    for kind in ("channel", "negative", "class"):
        mine = [u for u in units if u.kind == kind]
        jobs += [Job(mine[i:i + batch]) for i in range(0, len(mine), batch)]
    sets: dict = {}
    for u in units:
        if u.kind == "diversity":
            sets.setdefault(u.objective, []).append(u)
    jobs += [Job(us) for us in sets.values()]
    jobs += [Job([u], photos.get(u.photo)) for u in units
             if u.kind not in ("channel", "negative", "class", "diversity")]
    order = {id(u): k for k, u in enumerate(units)}
    return sorted(jobs, key=lambda j: order[id(j.units[0])])


def _where(opts: Options) -> str:
    if opts.executor == "ray":
        return f"Ray ({opts.ray_address or 'a local instance'}, {opts.threads or 1} thread(s) per task)"
    if opts.workers <= 1:
        return f"this process ({opts.threads or 'onnxruntime default'} threads)"
    return (f"{opts.workers} local processes, "
            f"{executors.split_threads(opts.workers, opts.threads)} thread(s) each")


def _kinds(units: list[Unit]) -> dict:
    """``{"channels": 5712, "classes": 50, ...}`` in plan order."""
    names = {"channel": "channels", "class": "classes", "dream": "dreams",
             "inversion": "inversions", "negative": "negatives", "diversity": "diverse pictures"}
    counts: dict[str, int] = {}
    for u in units:
        key = names.get(u.kind, u.kind)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _weights(units: list[Unit], bundle, photo_hw: dict) -> dict:
    """Each unit's share of the work (``progress.work``), for the ETA."""
    place = {l["name"]: k for k, l in enumerate(bundle.layers)}
    depth = {name: (k + 1) / max(1, len(place)) for name, k in place.items()}
    model_hw = tuple(int(s) for s in bundle.input["shape"][2:])
    return {u.id: work(u, depth.get(u.layer, 1.0), model_hw, photo_hw.get(u.photo))
            for u in units}


def _save(unit: Unit, picture, out: Path) -> None:
    picture.meta["atlas"] = {"key": unit.key, "kind": unit.kind, "layer": unit.layer,
                             "index": unit.index, "objective": unit.objective, "photo": unit.photo,
                             **({"variant": unit.variant} if unit.variant is not None else {})}
    picture.save(out / unit.path)


def build(opts: Options, stream=None) -> Report:
    stream = stream or sys.stderr
    t0 = time.perf_counter()
    if opts.workers < 1:
        raise UsageError("--workers must be at least 1")
    bundle = Bundle.open(opts.bundle if opts.bundle is not None else default_bundle())
    spec = opts.spec
    need_photos = spec.dreams or spec.inversions or opts.examples > 0
    paths = photo_files(opts.photos) if need_photos else []
    spec.photos = paths
    units = make_plan(bundle, spec)
    _check_out(opts.out)
    assign_keys(units, bundle.manifest_sha256, {p.name: p for p in paths})
    photos = {p.name: load_image(p) for p in paths}
    for u in units:  # too small, or too thin once dreamed at --max-side: one line, before any work
        if u.photo is not None:
            options.check_photo(photos[u.photo], u.params, u.photo)
    todo = units if opts.force else [u for u in units if not is_done(u, opts.out)]
    layers = spec.layers if spec.layers is not None else [l["name"] for l in bundle.layers]

    made = outputset.make_folder(opts.out)  # before any work: one line if it cannot be made
    try:
        outcomes = executors.execute(jobs_of(todo, int(bundle.input["shape"][0]), photos),
                                     str(bundle.root), opts.provider, opts.executor, opts.workers,
                                     opts.threads, opts.ray_address) if todo else iter(())
    except BaseException:  # e.g. no Ray: leave no empty folder behind
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    progress = Progress(len(units), len(units) - len(todo), stream,
                        _weights(todo, bundle, {name: p.shape[:2] for name, p in photos.items()}))
    progress.start(_where(opts), _kinds(units))
    errors: dict[str, str] = {}
    rendered, interrupted = 0, False
    try:
        for outcome in outcomes:
            if outcome.interrupted:
                raise KeyboardInterrupt
            for u in outcome.units:
                if outcome.error:
                    errors[u.id] = outcome.error
            for u, pic in zip(outcome.units, outcome.pictures):
                try:
                    _save(u, pic, opts.out)
                except InterruptedAfterWrite:
                    rendered += 1
                    raise
                rendered += 1
            progress.update(outcome.units, outcome.error)
    except KeyboardInterrupt:
        interrupted = True
        close = getattr(outcomes, "close", None)
        if close:
            close()  # stops the workers (see executors)
    finally:
        progress.close()

    means = {}  # after a Ctrl-C the examples wait for the next run
    channel_layers = sorted({u.layer for u in units if u.kind == "channel"})
    if opts.examples > 0 and channel_layers and not interrupted:
        means = layer_means(Model(bundle, provider=opts.provider, threads=opts.threads),
                            photos, channel_layers)
    atlas = site.record(bundle, units, opts.out, errors, means, list(photos), opts.examples, layers)
    site.write_site(opts.out, atlas, photos)
    failures = [(f["unit"], f["error"]) for f in atlas["failures"]]
    report = Report(len(units), len(units) - len(todo), rendered, failures, interrupted,
                    time.perf_counter() - t0)
    _summary(report, opts.out, stream)
    return report


def _summary(r: Report, out: Path, stream) -> None:
    state = "interrupted; rerun to resume" if r.interrupted else "done"
    stream.write(f"atlas {state}: {r.rendered} rendered, {r.skipped} already there, "
                 f"{len(r.failures)} failed, of {r.total}, in {duration(r.seconds)}; "
                 f"open {out / 'index.html'}\n")
    for unit, error in r.failures:
        stream.write(f"  failed: {unit}: {error}\n")
    stream.flush()
