"""Ctrl-C (through the Python pieces and a real SIGINT), NaN/Inf and exceptions inside a technique
(docs/reliability.md); split from ``test_reliability.py``.
"""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from test_reliability import SMALL, no_temp_files

import ortviz.render.context
from ortviz.bundle.graphs import FEATURE_ENERGY
from ortviz.cli.techniques import make_command
from ortviz.engine.sessions import Engine
from ortviz.render import modelspace
from ortviz.render.optim import normalized
from ortviz.run import imagefiles
from ortviz.run.runner import RunRequest, run_request
from ortviz.techniques.spec import Need, Param, Technique, positive

from probes import dream_until, invoke, one_error_line, runner

# -- interrupts, numerical faults, exceptions in a technique ------------------------------------

def probe(fault, good: int = 3) -> Technique:
    """A tiny DeepDream-like technique: ``good`` iterations, then ``fault(ctx, x, t)``."""

    def run(ctx, iterations):
        x = ctx.photo_model()
        for t in range(good):
            step = ctx.grad(FEATURE_ENERGY.name, ctx.layer, x)
            x = ctx.clip(x + 0.01 * normalized(step.grad))
            ctx.report(t, step.loss, x)
        return fault(ctx, x, good) if fault else x

    return Technique(name="probe", summary="test probe", needs=(Need(FEATURE_ENERGY, on="layers"),),
                     params=(Param("iterations", int, 5, "n", positive),), start="photo",
                     default_layer="_blocks.1", run=run)


def request(tech, out, **kw) -> RunRequest:
    return RunRequest(technique=tech, params={"iterations": 5}, output=out, provider="cpu",
                      threads=2, **kw)


def saved(out: Path) -> tuple[np.ndarray, dict]:
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB"))
    return pixels, json.loads(out.with_suffix(out.suffix + ".json").read_text())


def raise_(exc):
    def fault(ctx, x, t):
        raise exc
    return fault


def test_ctrl_c_in_the_loop_keeps_the_last_good_image_and_exits_130(tmp_path):
    out = tmp_path / "p.png"
    kept = {}

    def fault(ctx, x, t):
        kept["x"] = ctx.last_good.copy()
        raise KeyboardInterrupt

    lines = []
    code = run_request(request(probe(fault), out), echo=lines.append, err=lines.append)
    assert code == 130 and lines[-1] == "interrupted; kept the last good image"
    pixels, meta = saved(out)
    assert meta["status"] == "interrupted" and meta["timing"]["iterations"] == 3
    assert np.array_equal(pixels, modelspace.from_model(kept["x"], *_mean_std()))
    assert no_temp_files(tmp_path)


def _mean_std():
    from ortviz.bundle.embedded import default_bundle
    pre = json.loads((default_bundle() / "manifest.json").read_text())["preprocessing"]
    return pre["mean"], pre["std"]


def cli_for(tech) -> typer.Typer:
    one = typer.Typer()
    one.command("probe")(make_command(tech))
    one.command("unused")(lambda: None)  # two commands: typer keeps the name
    return one


def test_ctrl_c_through_the_cli_before_and_after_the_first_iteration(tmp_path):
    out = tmp_path / "p.png"
    r = runner.invoke(cli_for(probe(raise_(KeyboardInterrupt()))), ["probe", "-o", str(out), "--provider", "cpu"])
    assert r.exit_code == 130 and out.exists(), r.output
    assert saved(out)[1]["status"] == "interrupted"
    out.unlink()
    out.with_suffix(".png.json").unlink()
    r = runner.invoke(cli_for(probe(raise_(KeyboardInterrupt()), good=0)), ["probe", "-o", str(out)])
    assert r.exit_code == 130 and r.output.strip().endswith("interrupted"), r.output
    assert not list(tmp_path.iterdir())


def test_ctrl_c_while_writing_is_held_until_image_and_sidecar_are_complete(tmp_path, monkeypatch):
    real = imagefiles.image_writer

    def writer(path, rgb):
        write = real(path, rgb)

        def write_and_interrupt(f):
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of write_result
            write(f)
        return write_and_interrupt

    monkeypatch.setattr(imagefiles, "image_writer", writer)
    out = tmp_path / "p.png"
    code = run_request(request(probe(None), out), echo=lambda m: None, err=lambda m: None)
    assert code == 130
    pixels, meta = saved(out)
    assert meta["status"] == "complete" and pixels.shape == (224, 224, 3)
    assert no_temp_files(tmp_path)


def test_ctrl_c_after_the_loop_still_keeps_the_image(tmp_path, monkeypatch):
    def interrupted_top5(engine, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(ortviz.render.context, "top5", interrupted_top5)
    out = tmp_path / "p.png"
    code = run_request(request(probe(None), out), echo=lambda m: None, err=lambda m: None)
    _, meta = saved(out)
    assert code == 130 and meta["status"] == "interrupted" and meta["top5"] == []


def test_ctrl_c_on_a_real_process_writes_the_last_good_image(tmp_path):
    code, stderr = dream_until(tmp_path, signal.SIGINT, "--iterations", "200", "--octaves", "2",
                               "--max-side", "256", wait=4)
    assert code == 130, stderr
    assert "interrupted; kept the last good image" in stderr and "Traceback" not in stderr
    meta = json.loads((tmp_path / "d.png.json").read_text())
    assert meta["status"] == "interrupted" and 0 < meta["timing"]["iterations"] < 400
    with Image.open(tmp_path / "d.png") as im:
        assert max(im.size) in (256, 183)  # the octave it was in
    assert no_temp_files(tmp_path)


def nan_pixel(ctx, x, t):
    x = x.copy()
    x[0, 0, 5, 5] = np.nan
    ctx.grad(FEATURE_ENERGY.name, ctx.layer, x)  # the gradient holds NaN: stops here
    raise AssertionError("not stopped")


def inf_loss(ctx, x, t):
    ctx.report(t, float("inf"), x)
    raise AssertionError("not stopped")


@pytest.mark.parametrize("fault,why", [(nan_pixel, "gave a non-finite loss"),
                                       (inf_loss, "non-finite value in iteration 4")])
def test_nan_or_inf_stops_the_run_and_keeps_the_last_good_image(tmp_path, fault, why):
    out = tmp_path / "p.png"
    kept = {}

    def watch(ctx, x, t):
        kept["x"] = ctx.last_good.copy()
        return fault(ctx, x, t)

    r = runner.invoke(cli_for(probe(watch)), ["probe", "-o", str(out), "--provider", "cpu"])
    assert r.exit_code == 1, r.output
    line = one_error_line(r)
    assert line.startswith("error: stopped:") and why in line and line.endswith("kept the last good image")
    pixels, meta = saved(out)
    assert meta["status"].startswith("stopped:") and why in meta["status"]
    assert meta["timing"]["iterations"] == 3
    assert np.array_equal(pixels, modelspace.from_model(kept["x"], *_mean_std()))


def test_nan_before_any_good_image_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "p.png"
    r = runner.invoke(cli_for(probe(nan_pixel, good=0)), ["probe", "-o", str(out)])
    assert r.exit_code == 1 and "no good image to keep" in one_error_line(r)
    assert not list(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on the inf gradient
def test_nan_from_the_engine_stops_the_builtin_dream(tmp_path, monkeypatch):
    real = Engine.gradient
    calls = []

    def gradient(self, objective, layer):
        f = real(self, objective, layer)

        def g(image, **inputs):
            calls.append(1)
            step = f(image, **inputs)
            if len(calls) == 3:
                step.grad[0, 0, 0, 0] = np.inf
            return step
        return g

    monkeypatch.setattr(Engine, "gradient", gradient)
    out = tmp_path / "d.png"
    r = invoke("dream", "--model", SMALL, "--layer", "layer1", "--iterations", 5, "--octaves", 1,
               "--max-side", 32, "-o", out)
    assert r.exit_code == 1 and "non-finite gradient" in one_error_line(r)
    _, meta = saved(out)
    assert meta["status"] == "stopped: feature_energy at layer1 gave a non-finite gradient"
    assert meta["timing"]["iterations"] == 2


def test_an_exception_inside_a_technique_is_named_and_keeps_the_last_good_image(tmp_path):
    out = tmp_path / "p.png"
    r = runner.invoke(cli_for(probe(raise_(ValueError("boom\nsecond line")))),
                      ["probe", "-o", str(out), "--provider", "cpu"])
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "technique probe (module test_interrupts) failed: ValueError: boom" in line
    assert saved(out)[1]["status"].startswith("stopped: technique probe")


def test_an_exception_inside_a_plugin_names_its_package(tmp_path, monkeypatch):
    from importlib import metadata
    try:
        metadata.distribution("ortviz-saliency")
    except metadata.PackageNotFoundError:
        pytest.fail("ortviz-saliency is not installed: pip install -e tests/plugins/ortviz-saliency")

    def broken(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ortviz.render.context.Context, "grad", broken)
    out = tmp_path / "s.png"
    r = invoke("run", "saliency", "--model", SMALL, "--class", 3, "--iterations", 2, "-o", out)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "technique saliency (plugin package ortviz-saliency 0.1.0) failed: RuntimeError: boom" in line
    assert not out.exists()


def test_an_unanticipated_error_is_still_one_line(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise TypeError("a bug")

    monkeypatch.setattr("ortviz.run.runner.prepare", broken)
    r = invoke("dream", "-o", tmp_path / "x.png")
    assert r.exit_code == 1 and r.output.strip() == (
        "error: unexpected TypeError: a bug (ORTVIZ_DEBUG=1 shows the traceback)")


def test_output_under_a_file_is_bad_input(tmp_path):
    (tmp_path / "f").write_text("x")
    r = invoke("dream", "--model", SMALL, "--layer", "layer1", "--iterations", 1,
               "-o", tmp_path / "f" / "x.png")
    assert r.exit_code == 2 and "is not a directory" in one_error_line(r)


def test_sidecar_numbers_stay_json(tmp_path):
    out = tmp_path / "d.png"
    r = invoke("dream", "--model", SMALL, "--layer", "layer1", "--iterations", 1, "--octaves", 1,
               "--max-side", 32, "--lr", "1e400", "-o", out)  # inf: refused before the run
    assert r.exit_code == 2 and "--lr must be a finite number, got inf" in one_error_line(r)
    assert not out.exists()
    from ortviz.run.write import write_json
    write_json(tmp_path / "s.json", {"loss": float("inf"), "history": [1.0, float("nan")]})
    meta = json.loads((tmp_path / "s.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"sidecar holds {c}"))
    assert meta == {"loss": "inf", "history": [1.0, "nan"]}
