"""Shared pieces of the reliability tests: a tiny technique whose faults are injected, a CLI for
it, and checks on what a command printed and left on disk (default bundle; no test artifacts)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import typer
from PIL import Image
from typer.testing import CliRunner

from ortviz.bundle.graphs import FEATURE_ENERGY
from ortviz.cli import app
from ortviz.cli.techniques import make_command
from ortviz.render.optim import normalized
from ortviz.techniques.spec import Need, Param, Technique, positive

runner = CliRunner()


def invoke(*args, cli=app, env=None):
    """Run the CLI in-process with ``args`` (each made a string)."""
    return runner.invoke(cli, [str(a) for a in args], env=env)


def one_error_line(r) -> str:
    """The single ``error:`` line of a failed command (and no traceback)."""
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        "".join(traceback.format_exception(r.exception)))
    assert "Traceback" not in r.output, r.output
    errors = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, r.output
    assert "unexpected" not in errors[0], r.output
    return errors[0]


def only_line(r) -> str:
    """A usage error: exactly one non-empty line of output, and it is the ``error:`` line."""
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    return lines[0]


def temp_files(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.name.endswith((".tmp", ".old", ".lock"))]


def probe(fault=None, good: int = 2, name: str = "probe", start: str = "photo") -> Technique:
    """A DeepDream-like technique at the model's size: ``good`` iterations, then
    ``fault(ctx, x, t)`` (or the image)."""

    def run(ctx, iterations):
        x = ctx.photo_model() if start == "photo" else ctx.noise()
        for t in range(good):
            step = ctx.grad(FEATURE_ENERGY.name, ctx.layer, x)
            x = ctx.clip(x + 0.01 * normalized(step.grad))
            ctx.report(t, step.loss, x)
        return fault(ctx, x, good) if fault else x

    return Technique(name=name, summary="test probe", needs=(Need(FEATURE_ENERGY, on="layers"),),
                     params=(Param("iterations", int, 2, "n", positive),), start=start,
                     default_layer="_blocks.1", run=run)


def cli_for(tech) -> typer.Typer:
    one = typer.Typer()
    one.command("probe")(make_command(tech))
    one.command("unused")(lambda: None)  # two commands: typer keeps the name
    return one


def run_probe(tech, *args):
    return runner.invoke(cli_for(tech), ["probe", "--provider", "cpu", "--threads", "1",
                                         *[str(a) for a in args]])


def saved(out: Path) -> tuple[np.ndarray, dict]:
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB"))
    return pixels, json.loads(out.with_name(out.name + ".json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes): to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and not p.is_symlink()}


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, **extra)
    env.pop("ORTVIZ_PLUGINS", None) if "ORTVIZ_PLUGINS" not in extra else None
    return env


def dream_until(tmp_path, sig: int, *args: str, wait: float = 2) -> tuple[int, str]:
    """A real ``ortviz dream`` process (``args``: its options; default a long run at 64 px),
    sent ``sig`` after it has run ``wait`` seconds; its exit code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ortviz", "dream",
         *(args or ("--iterations", "100000", "--octaves", "1", "--max-side", "64")),
         "--threads", "1", "--provider", "cpu", "-o", "d.png"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 120)
        assert ready, "the run did not start within 120 s"
        started = proc.stderr.readline()
        assert started.startswith("deepdream on efficientnet-lite0"), started
        time.sleep(wait)  # some iterations
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr
