"""Where jobs run: in this process, on local worker processes, or as Ray tasks.

Each executor takes the same jobs and yields an :class:`~ortviz.atlas.work.Outcome` per job as
it finishes; all of them call the same :func:`~ortviz.atlas.work.run_job`, so a unit gives the
same picture whichever ran it (same seed, same thread count, same machine).

- ``inline``: this process, one job after another.
- ``processes``: ``--workers N`` local processes (spawned, not forked: onnxruntime's thread pools
  do not survive a fork), each with its own model loaded once. Ctrl-C cancels what has not
  started and stops the workers; nothing they held was written.
- ``ray``: a Ray task per job (``pip install ortviz[ray]``), on the cluster at ``address`` or on
  a local Ray instance. Each task asks Ray for ``threads`` CPUs; the bundle path must exist on
  every node (the embedded default bundle does wherever ortviz is installed).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator

from ortviz.atlas.work import Job, Outcome, run_job, worker_setup
from ortviz.errors import UsageError


def split_threads(workers: int, threads: int | None = None) -> int:
    """Threads per worker: the given count, else the cores shared out (at least 1 each)."""
    return threads if threads else max(1, (os.cpu_count() or 1) // workers)


def inline(jobs: Iterable[Job], bundle: str, provider: str, threads: int | None) -> Iterator[Outcome]:
    for job in jobs:
        out = run_job(job, bundle, provider, threads)
        if out.interrupted:
            raise KeyboardInterrupt
        yield out


def processes(jobs: list[Job], bundle: str, provider: str, threads: int | None,
              workers: int) -> Iterator[Outcome]:
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_setup,
                               initargs=(bundle, provider, threads))
    try:
        pending = {pool.submit(run_job, job, bundle, provider, threads) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (they write nothing)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=10)


# Ray's note that a new local instance has token authentication on (its default, kept) is a
# warning on every start; the run's own lines say where it runs
TOKEN_NOTE = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _quiet(logger: str):
    """Only errors from ``logger`` while the block runs."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _ray():
    try:
        import ray  # optional: the [ray] extra
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'ortviz[ray]'") from None
    return ray


def ray_tasks(jobs: list[Job], bundle: str, provider: str, threads: int | None,
              address: str | None) -> Iterator[Outcome]:
    ray = _ray()
    started = False
    if not ray.is_initialized():
        kw = {"address": address} if address else {"num_cpus": os.cpu_count() or 1}
        try:
            with _quiet(TOKEN_NOTE):
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
        except ConnectionError as exc:
            raise UsageError(f"--ray-address {address}: {exc}") from None
        started = True
    per_task = threads or 1
    task = ray.remote(num_cpus=per_task)(run_job)
    try:
        pending = [task.remote(job, bundle, provider, per_task) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    except BaseException:
        for ref in pending if "pending" in locals() else []:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def execute(jobs: list[Job], bundle: str, provider: str, executor: str, workers: int,
            threads: int | None, ray_address: str | None = None) -> Iterator[Outcome]:
    if executor == "ray":
        _ray()  # not installed: one line now, before anything is written
        return ray_tasks(jobs, bundle, provider, threads or 1, ray_address)
    if executor != "local":
        raise UsageError(f"--executor {executor!r}: choose local or ray")
    if workers <= 1:
        return inline(jobs, bundle, provider, threads)
    return processes(jobs, bundle, provider, split_threads(workers, threads), workers)
