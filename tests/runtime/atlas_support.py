"""What the atlas tests share: the channel technique, the CLI runner and one small built site.

The atlas renders channels with the ``feature-visualization`` technique. Where that technique
is installed (the run-time objectives work), the tests use it. Where it is not, they install a
small stand-in the way any third party would: a module and a ``*.dist-info`` with an
``ortviz.techniques`` entry point, on ``sys.path`` (spawned worker processes inherit it). The
stand-in is a real channel ascent: the gradient of the channel's sum comes from the bundle's
feature-distance graph with target ``phi(x) - e_n`` (d/dx ||phi - t||^2 = 2 J^T e_n).
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from ortviz.techniques.registry import techniques

# 2 layers x 2 channels, 2 classes, the 2 bundled photos at both layers (DeepDream, inversion):
# 4 + 2 + 8 = 14 pictures of 2 iterations (DeepDream: per octave).
LAYERS = ["_blocks.5", "_blocks.10"]
SMALL = ["--layers", ",".join(LAYERS), "--channels", "2", "--classes", "2", "--iterations", "2",
         "--threads", "1", "--examples", "2"]
UNITS = 2 * 2 + 2 + 2 * 2 * 2

FAKE = '''
import numpy as np
from ortviz.render import modelspace
from ortviz.bundle.graphs import FEATURE_DISTANCE
from ortviz.render.optim import normalized
from ortviz.techniques.spec import Need, Param, Technique, positive


def run(ctx, iterations, lr, objective):
    layer, _, n = objective.rpartition(":")
    n = int(n)
    x = ctx.noise()
    for t in range(iterations):
        oy, ox = modelspace.random_shift(ctx.rng, 8)
        xj = modelspace.jitter(x, oy, ox)
        phi = ctx.engine.features(xj, layer)
        unit = np.zeros_like(phi)
        unit[:, n] = 1.0
        step = ctx.grad(FEATURE_DISTANCE.name, layer, xj, target_features=phi - unit)
        x = ctx.clip(x + lr * normalized(modelspace.unjitter(step.grad, oy, ox)))
        ctx.report(t, float(phi[:, n].mean()), x)
    return x


technique = Technique(
    name="feature-visualization",
    summary="Test stand-in: climb one channel's mean activation.",
    needs=(Need(FEATURE_DISTANCE, on="layers"),),
    params=(Param("iterations", int, 32, "Iterations.", positive),
            Param("lr", float, 0.05, "Step size.", positive),
            Param("objective", str, "_blocks.5:0", "LAYER:CHANNEL.")),
    run=run,
)
'''


_PLUGIN: list[str] = []


def plugin_path() -> str:
    """Where the stand-in lives ("" when the real technique is used), for subprocesses."""
    channel_technique()
    return _PLUGIN[0] if _PLUGIN else ""


@functools.cache
def channel_technique() -> str:
    """``real`` when feature-visualization is installed, else ``stand-in`` (installed now)."""
    if "feature-visualization" in techniques():
        return "real"
    root = Path(tempfile.mkdtemp(prefix="ortviz-atlas-plugin-"))
    _PLUGIN.append(str(root))
    (root / "atlas_fake_fv.py").write_text(textwrap.dedent(FAKE))
    info = root / "atlas_fake_fv-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: atlas-fake-fv\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ortviz.techniques]\nfeature-visualization = atlas_fake_fv:technique\n")
    sys.path.insert(0, str(root))
    assert "feature-visualization" in techniques(), "the stand-in technique did not register"
    return "stand-in"


def atlas(*args: str):
    """Run ``ortviz atlas`` (the command's own Typer app) in this process."""
    from ortviz.cli.atlas import app
    return CliRunner().invoke(app, [str(a) for a in args])


def load(site: Path) -> dict:
    return json.loads((site / "atlas.json").read_text())


@functools.cache
def small_site() -> Path:
    """The small atlas, built once per test session in this process (read-only for tests)."""
    channel_technique()
    site = Path(tempfile.mkdtemp(prefix="ortviz-atlas-site-")) / "site"
    result = atlas("-o", site, *SMALL)
    assert result.exit_code == 0, result.output
    return site


def copy_site(dst: Path) -> Path:
    shutil.copytree(small_site(), dst)
    return dst
