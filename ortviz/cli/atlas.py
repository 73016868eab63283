"""``ortviz atlas``: a browsable static site of a model (see :mod:`ortviz.atlas`).

Exit codes as for every command (:mod:`ortviz.cli.common`): 0 all pictures rendered, 2 bad
input (nothing written), 1 some pictures failed (the site lists them), 130 interrupted (what
was finished is kept and on the site; rerun to resume). Also runnable as
``python -m ortviz.cli.atlas``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ortviz.cli.common import friendly
from ortviz.errors import UsageError


@friendly
def atlas(
    output: Path = typer.Option(..., "--output", "-o", help="Site directory (new, empty, or an atlas made before)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Bundle directory (default: the embedded EfficientNet-Lite0)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Comma-separated layer names (default: the bundle's layer table)."),
    channels: str = typer.Option("all", "--channels", help="Per layer: all, N (the first N), or a list/ranges like 0-7,12; 0 for none."),
    classes: str = typer.Option("50", "--classes", help="N (a spread of N over the labels), all, or a list of indices/names; 0 for none."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="Folder of photos for DeepDream, inversion and dataset examples (default: the bundled samples)."),
    dreams: bool = typer.Option(True, "--dreams/--no-dreams", help="A DeepDream of each photo at each layer."),
    inversions: bool = typer.Option(True, "--inversions/--no-inversions", help="A feature inversion of each photo at each layer."),
    negative: bool = typer.Option(False, "--negative/--no-negative", help="Also each channel's negative picture (the channel descended), on its page."),
    diversity: int = typer.Option(0, "--diversity", help="K >= 2: also a diversity set of K pictures per channel that differ (one run each), on its page; 0: none."),
    examples: int = typer.Option(4, "--examples", min=0, help="Dataset examples per channel (photos that excite it most)."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="Iterations for every technique that has the parameter (default: each technique's own)."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="A technique parameter, NAME=VALUE (every technique that has it) or TECHNIQUE.NAME=VALUE; repeatable."),
    seed: int = typer.Option(0, "--seed", help="Seed of every picture; the same seed and --threads give the same pictures on any executor."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Local worker processes; the cores are split between them."),
    executor: str = typer.Option("local", "--executor", help="local (this process or --workers processes) or ray (Ray tasks; needs the ortviz extra named ray)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="An existing Ray cluster (default: a local Ray instance)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads per worker (default: cores // workers; one worker: onnxruntime's choice; Ray: 1)."),
    provider: str = typer.Option("auto", "--provider", help="Execution provider: auto, cpu, cuda, openvino, ..."),
    force: bool = typer.Option(False, "--force", help="Render everything again, even what is already there."),
) -> None:
    """Render a browsable atlas of a model: a picture per channel and class, DeepDreams and
    inversions of photos, dataset examples; a static site that works from file://."""
    from ortviz.atlas import Options, Spec, build  # onnxruntime (and Ray): only when it runs

    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor!r}: choose local or ray")
    if ray_address and executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    spec = Spec(layers=[s.strip() for s in layers.split(",") if s.strip()] if layers else None,
                channels=channels, classes=classes, dreams=dreams, inversions=inversions,
                iterations=iterations, sets=list(sets or []), seed=seed, negative=negative,
                diversity=diversity)
    report = build(Options(out=output, spec=spec, bundle=model, photos=photos, examples=examples,
                           force=force, workers=workers, executor=executor, threads=threads,
                           provider=provider, ray_address=ray_address))
    if report.interrupted:
        raise typer.Exit(130)
    if report.failures:
        raise typer.Exit(1)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("atlas")(atlas)

if __name__ == "__main__":
    app(prog_name="ortviz atlas")
