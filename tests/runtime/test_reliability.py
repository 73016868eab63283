"""Reliability and security on stock onnxruntime (README, "Reliability").

Untrusted bundles (external data that leaves the bundle, manifests of the wrong shape), Ctrl-C
(through the Python pieces and a real SIGINT), NaN/Inf, exceptions inside a technique, readers
while a bundle is replaced, and a seeded fuzz of bundle and image files through the CLI.
"""

import io
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import pytest
import typer
from conftest import ARTIFACTS
from PIL import Image
from typer.testing import CliRunner

import ortviz.render
from ortviz import images, imaging, locking
from ortviz.bundle import Bundle, BundleError, sha256
from ortviz.cli import app
from ortviz.cli.techniques import make_command
from ortviz.defaults import sample
from ortviz.engine import Engine
from ortviz.export import writer
from ortviz.objectives import FEATURE_ENERGY
from ortviz.optim import normalized
from ortviz.runner import RunRequest, run_request
from ortviz.technique import Need, Param, Technique, positive

SMALL = ARTIFACTS / "small_resnet_torchscript"
GRAD = "grad.features__layer1.onnx"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(r) -> str:
    """The single ``error:`` line of a failed command (and no traceback)."""
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        "".join(traceback.format_exception(r.exception)))
    assert "Traceback" not in r.output, r.output
    errors = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, r.output
    assert "unexpected" not in errors[0], r.output
    return errors[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


# -- untrusted bundles -------------------------------------------------------------------------

def small_copy(tmp_path, name="b") -> Path:
    assert SMALL.exists(), f"{SMALL} missing: run the export stage first (make test)"
    dst = tmp_path / name
    shutil.copytree(SMALL, dst)
    return dst


def edit_manifest(b: Path, change) -> None:
    m = json.loads((b / "manifest.json").read_text())
    res = change(m)  # edits in place, or returns ("replace", new manifest)
    if isinstance(res, tuple) and res[:1] == ("replace",):
        m = res[1]
    (b / "manifest.json").write_text(json.dumps(m))


def rehash(b: Path, rel: str) -> None:
    """Make the manifest agree with a changed file, as an attacker would."""
    edit_manifest(b, lambda m: m["files"].__setitem__(rel, sha256(b / rel)))


def point_external_data(b: Path, rel: str, location: str, offset: int | None = None) -> str:
    """Point the first external initializer of ``rel`` at ``location``; the hash is fixed so only
    the external-data check can refuse it. Returns the tensor's name."""
    model = onnx.load(str(b / rel), load_external_data=False)
    tensor = next(t for t in model.graph.initializer
                  if t.data_location == onnx.TensorProto.EXTERNAL)
    for entry in tensor.external_data:
        if entry.key == "location":
            entry.value = location
        if entry.key == "offset" and offset is not None:
            entry.value = str(offset)
    (b / rel).write_bytes(model.SerializeToString())
    rehash(b, rel)
    return tensor.name


@pytest.fixture
def no_onnxruntime_loads(monkeypatch):
    """Fail the test if onnxruntime is asked to load any model."""
    import onnxruntime

    def refuse(*a, **k):
        raise AssertionError(f"onnxruntime loaded {a[:1]} before the bundle was refused")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


@pytest.mark.parametrize("case", ["absolute", "dotdot", "unlisted", "dot_slash", "past_end",
                                  "attribute"])
def test_external_data_outside_the_bundle_is_refused_before_loading(tmp_path, case,
                                                                    no_onnxruntime_loads):
    b = small_copy(tmp_path)
    outside = tmp_path / "outside.bin"
    shutil.copy(b / "weights.bin", outside)  # the right bytes, so only the location is wrong
    if case == "absolute":
        loc, expect = str(outside), "outside the bundle (absolute path or ..)"
    elif case == "dotdot":
        loc, expect = "../outside.bin", "outside the bundle (absolute path or ..)"
    elif case == "unlisted":
        loc, expect = "other.bin", "a file the manifest does not list"
    elif case == "dot_slash":
        loc, expect = "./weights.bin", "a file the manifest does not list"
    elif case == "past_end":
        loc, expect = "weights.bin", "past the end of the"
    if case == "attribute":  # a Constant node's tensor, not an initializer
        model = onnx.load(str(b / GRAD), load_external_data=False)
        value = onnx.TensorProto(name="c", data_type=onnx.TensorProto.FLOAT, dims=[4],
                                 data_location=onnx.TensorProto.EXTERNAL)
        value.external_data.add(key="location", value=str(outside))
        value.external_data.add(key="length", value="16")
        model.graph.node.append(onnx.helper.make_node("Constant", [], ["c_out"], value=value))
        (b / GRAD).write_bytes(model.SerializeToString())
        rehash(b, GRAD)
        expect, name = "outside the bundle", "c"
    else:
        name = point_external_data(b, GRAD, loc, offset=10**9 if case == "past_end" else None)
    with pytest.raises(BundleError) as err:
        Bundle.open(b)
    msg = str(err.value)
    assert expect in msg and GRAD in msg and repr(name[:60]) in msg, msg
    assert "\n" not in msg
    out = tmp_path / "o.png"
    r = invoke("dream", "--model", b, "--layer", "layer1", "--iterations", 1, "--octaves", 1,
               "-o", out)
    assert r.exit_code == 2 and GRAD in one_error_line(r) and not out.exists()


def test_symlinks_in_a_bundle_are_refused(tmp_path, no_onnxruntime_loads):
    # weights.bin replaced by a link to an outside copy (with the right bytes and hash)
    b = small_copy(tmp_path)
    outside = tmp_path / "outside.bin"
    shutil.move(b / "weights.bin", outside)
    (b / "weights.bin").symlink_to(outside)
    with pytest.raises(BundleError, match="'weights.bin' is a link or leaves the bundle"):
        Bundle.open(b)
    # a graph whose external data names a link inside the bundle that the manifest lists
    b = small_copy(tmp_path, "b2")
    (b / "w2.bin").symlink_to(b / "weights.bin")
    point_external_data(b, GRAD, "w2.bin")
    edit_manifest(b, lambda m: m["files"].__setitem__("w2.bin", sha256(b / "weights.bin")))
    with pytest.raises(BundleError, match="'w2.bin' is a link"):
        Bundle.open(b)
    # the location check itself, for a link the manifest does not cover
    b = small_copy(tmp_path, "b3")
    bundle = Bundle.open(b)
    (b / "w3.bin").symlink_to(outside)
    tensor = onnx.TensorProto(name="t", data_location=onnx.TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="w3.bin")
    with pytest.raises(BundleError, match="which is a symlink"):
        bundle._check_external(GRAD, tensor, {})


MANIFEST_CASES = {
    "graphs not a list": (lambda m: m.__setitem__("graphs", {}), "field 'graphs' must be a list"),
    "labels missing": (lambda m: m.pop("labels"), "has no 'labels' field"),
    "too few labels": (lambda m: m["labels"].pop(), "9 labels for 10 classes"),
    "label not a string": (lambda m: m["labels"].__setitem__(2, 7), "'labels' must be a list of strings"),
    "shape of strings": (lambda m: m["input"].__setitem__("shape", ["1", "3", "32", "32"]),
                         "'input.shape' must be a list of positive integers"),
    "model not an object": (lambda m: m.__setitem__("model", "x"), "'model' must be an object"),
    "no model name": (lambda m: m["model"].pop("name"), "has no 'model.name' field"),
    "hash not hex": (lambda m: m["files"].__setitem__("weights.bin", 5), "is not a sha256 hex digest"),
    "graph extra field": (lambda m: m["graphs"][0].__setitem__("x", 1), "exactly the fields"),
    "graph not an object": (lambda m: m["graphs"].__setitem__(0, []), "exactly the fields"),
    "graph unlisted": (lambda m: m["graphs"][0].__setitem__("file", "nope.onnx"),
                       "'nope.onnx' is not listed under files"),
    "graph for no layer": (lambda m: m["graphs"][3].__setitem__("layer", "layer9"),
                           "which the layer table does not have"),
    "forward lacks a layer": (lambda m: m["forward"]["outputs"].pop(), "forward.outputs lacks"),
    "std zero": (lambda m: m["preprocessing"]["std"].__setitem__(1, 0), "std values must be positive"),
    "mean too short": (lambda m: m["preprocessing"]["mean"].pop(), "mean needs 3 values"),
    "nan mean": (lambda m: m["preprocessing"]["mean"].__setitem__(0, float("nan")), "finite numbers"),
    "not an object": (lambda m: ("replace", [m]), "is not an ortviz bundle manifest"),
    "version true": (lambda m: m.__setitem__("format_version", True), "format version True"),
    "no files": (lambda m: m.__setitem__("files", {}), "lists no files"),
    "wrong image size": (lambda m: [g["inputs"].__setitem__("image", [1, 3, 32, 33]) for g in m["graphs"]]
                         and m["input"].__setitem__("shape", [1, 3, 32, 33]),
                         "input 'image' has shape [1, 3, 32, 32], the manifest says [1, 3, 32, 33]"),
    "wrong layer shape": (lambda m: m["layers"][2].__setitem__("shape", [1, 8, 8, 9]), "has shape"),
    "grad output renamed": (lambda m: m["graphs"][0]["outputs"].__setitem__("grad", "g"),
                            "has no output 'g'"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifests_of_the_wrong_shape_are_refused_in_one_line(tmp_path, case, no_onnxruntime_loads):
    change, expect = MANIFEST_CASES[case]
    b = small_copy(tmp_path)
    edit_manifest(b, change)
    with pytest.raises(BundleError) as err:
        Bundle.open(b)
    assert expect in str(err.value) and "\n" not in str(err.value), str(err.value)
    r = invoke("info", b)
    assert r.exit_code == 2 and expect in one_error_line(r)


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
    assert np.array_equal(pixels, imaging.from_model(kept["x"], *_mean_std()))
    assert no_temp_files(tmp_path)


def _mean_std():
    from ortviz.defaults import default_bundle
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
    real = images.image_writer

    def writer(path, rgb):
        write = real(path, rgb)

        def write_and_interrupt(f):
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of write_result
            write(f)
        return write_and_interrupt

    monkeypatch.setattr(images, "image_writer", writer)
    out = tmp_path / "p.png"
    code = run_request(request(probe(None), out), echo=lambda m: None, err=lambda m: None)
    assert code == 130
    pixels, meta = saved(out)
    assert meta["status"] == "complete" and pixels.shape == (224, 224, 3)
    assert no_temp_files(tmp_path)


def test_ctrl_c_after_the_loop_still_keeps_the_image(tmp_path, monkeypatch):
    def interrupted_top5(engine, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(ortviz.render, "top5", interrupted_top5)
    out = tmp_path / "p.png"
    code = run_request(request(probe(None), out), echo=lambda m: None, err=lambda m: None)
    _, meta = saved(out)
    assert code == 130 and meta["status"] == "interrupted" and meta["top5"] == []


def test_ctrl_c_on_a_real_process_writes_the_last_good_image(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ortviz", "dream", "--iterations", "200", "--octaves", "2",
         "--max-side", "256", "--threads", "1", "--provider", "cpu", "-o", "d.png"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 120)
        assert ready, "the run did not start within 120 s"
        started = proc.stderr.readline()
        assert started.startswith("deepdream on efficientnet-lite0"), started
        time.sleep(4)  # some iterations
        assert proc.poll() is None, "the run ended before the interrupt"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
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
    assert np.array_equal(pixels, imaging.from_model(kept["x"], *_mean_std()))


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
    assert "technique probe (module test_reliability) failed: ValueError: boom" in line
    assert saved(out)[1]["status"].startswith("stopped: technique probe")


def test_an_exception_inside_a_plugin_names_its_package(tmp_path, monkeypatch):
    from importlib import metadata
    try:
        metadata.distribution("ortviz-saliency")
    except metadata.PackageNotFoundError:
        pytest.fail("ortviz-saliency is not installed: pip install -e tests/plugins/ortviz-saliency")

    def broken(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ortviz.render.Context, "grad", broken)
    out = tmp_path / "s.png"
    r = invoke("run", "saliency", "--model", SMALL, "--class", 3, "--iterations", 2, "-o", out)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "technique saliency (plugin package ortviz-saliency 0.1.0) failed: RuntimeError: boom" in line
    assert not out.exists()


def test_an_unanticipated_error_is_still_one_line(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise TypeError("a bug")

    monkeypatch.setattr("ortviz.runner.prepare", broken)
    r = invoke("dream", "-o", tmp_path / "x.png")
    assert r.exit_code == 1 and r.output.strip() == (
        "error: unexpected TypeError: a bug (ORTVIZ_DEBUG=1 shows the traceback)")


def test_output_under_a_file_is_bad_input(tmp_path):
    (tmp_path / "f").write_text("x")
    r = invoke("dream", "--model", SMALL, "--layer", "layer1", "--iterations", 1,
               "-o", tmp_path / "f" / "x.png")
    assert r.exit_code == 2 and "is not a directory" in one_error_line(r)


def test_non_finite_options_are_refused_and_sidecars_stay_json(tmp_path):
    out = tmp_path / "d.png"
    r = invoke("dream", "--model", SMALL, "--layer", "layer1", "--iterations", 1, "--octaves", 1,
               "--max-side", 32, "--lr", "1e400", "-o", out)  # inf: refused before the run
    assert r.exit_code == 2 and "--lr must be a finite number, got inf" in one_error_line(r)
    assert not out.exists() and not out.with_suffix(".png.json").exists()
    from ortviz.outputs import write_json
    write_json(tmp_path / "s.json", {"loss": float("inf"), "history": [1.0, float("nan")]})
    meta = json.loads((tmp_path / "s.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"sidecar holds {c}"))
    assert meta == {"loss": "inf", "history": [1.0, "nan"]}


# -- readers while the bundle is replaced ------------------------------------------------------

@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "rename-aside"])
def test_readers_get_a_whole_bundle_or_a_clean_error_while_it_is_replaced(tmp_path, monkeypatch,
                                                                           atomic):
    if not atomic:
        monkeypatch.setattr(locking, "exchange", lambda a, b: False)
    out = tmp_path / "bundle"
    sources = [ARTIFACTS / "small_resnet_torchscript", ARTIFACTS / "small_resnet_dynamo"]
    shutil.copytree(sources[0], out)
    stop = threading.Event()
    failures, errors, successes, swaps = [], [], [], []
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    want = {str(s): Engine(s, provider="cpu").logits(x) for s in sources}
    names = {json.loads((s / "manifest.json").read_text())["model"]["name"]: str(s) for s in sources}

    def write():
        k = 0
        while not stop.is_set():
            k += 1
            tmp = tmp_path / f".bundle.tmp-{k}"
            shutil.copytree(sources[k % 2], tmp)  # the two exports differ in every file
            writer.swap_into_place(tmp, out, force=True)
            swaps.append(k)
            time.sleep(0.15)  # an export takes seconds; readers need a chance to finish

    def read():
        while not stop.is_set():
            try:
                engine = Engine(Bundle.open(out), provider="cpu")
                logits = engine.logits(x)
                g = engine.gradient("feature_energy", "layer2")(x)
                assert np.isfinite(g.loss)
                # never a mix of two exports: the logits are those of the bundle that was opened
                assert np.allclose(logits, want[names[engine.bundle.name]], atol=1e-5)
                successes.append(1)
            except BundleError as exc:
                errors.append(str(exc))
            except BaseException as exc:  # noqa: BLE001 - the test's point
                failures.append("".join(traceback.format_exception(exc)))

    threads = [threading.Thread(target=write), threading.Thread(target=read),
               threading.Thread(target=read)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and not failures and (len(swaps) < 15 or len(successes) < 15):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    print(f"{len(swaps)} swaps, {len(successes)} good reads, {len(errors)} clean errors",
          sorted({e.split(":")[0][:60] for e in errors}))
    assert not failures, failures[0]
    assert successes and len(swaps) >= 5, (len(successes), len(swaps), errors[:3])
    assert all("\n" not in e for e in errors)
    Bundle.open(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # the lock file is removed


def test_the_swap_waits_for_the_lock(tmp_path):
    out = small_copy(tmp_path, "b")
    tmp = small_copy(tmp_path, ".b.tmp-1")
    done = threading.Event()

    def swap():
        writer.swap_into_place(tmp, out, force=True)
        done.set()

    with locking.exclusive(locking.lock_path(out)):  # another export is swapping
        t = threading.Thread(target=swap)
        t.start()
        assert not done.wait(0.5), "swapped while another process held the lock"
    t.join(30)
    assert done.is_set() and not tmp.exists()
    Bundle.open(out)


def test_replacing_refuses_what_is_not_a_bundle(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an ortviz bundle"):
        writer.check_replaceable(home, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a bundle directory"):
        writer.check_replaceable(tmp_path / "file", force=True)
    with pytest.raises(FileExistsError, match="pass --force"):
        writer.check_replaceable(home, force=False)
    tmp = small_copy(tmp_path, ".home.tmp-x")
    with pytest.raises(FileExistsError):
        writer.swap_into_place(tmp, home, force=True)
    assert (home / "notes.txt").read_text() == "mine"


# -- fuzz ------------------------------------------------------------------------------------

FUZZ_SEED = int(os.environ.get("ORTVIZ_FUZZ_SEED", 6))  # another seed explores further
FUZZ_CASES = int(os.environ.get("ORTVIZ_FUZZ_CASES", 300))


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))] if data else data


ODD_VALUES = [None, 0, -1, 1.5, True, "", "x", [], {}, [1], {"a": 1}, 10**12, 1e308, "../x"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _json_mutation(text: str, rng: random.Random) -> str:
    """Delete a field, or give it a value of another type, anywhere in the manifest."""
    m = json.loads(text)
    path = rng.choice([p for p in _paths(m) if p])
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    return json.dumps(m)


def _images(tmp_path: Path) -> dict[str, bytes]:
    png = sample().read_bytes()
    buf = io.BytesIO()
    with Image.open(sample()) as im:
        im.convert("RGB").resize((120, 80)).save(buf, "JPEG", quality=85)
    return {"png": png, "jpg": buf.getvalue()}


def _fuzz_case(k: int, rng: random.Random, tmp_path: Path, images: dict) -> tuple[str, list]:
    case = tmp_path / f"c{k}"
    case.mkdir()
    out = case / "out" / "o.png"
    common = ["--iterations", "1", "--octaves", "1", "--max-side", "64", "--provider", "cpu",
              "-o", str(out)]
    if rng.random() < 0.25:  # an image
        kind = rng.choice(sorted(images))
        how = rng.choice(["flip", "truncate"])
        data = (_flip if how == "flip" else _truncate)(images[kind], rng)
        img = case / f"in.{kind}"
        img.write_bytes(data)
        return f"{kind} {how}", ["dream", "--model", str(SMALL), "--layer", "layer1",
                                "--image", str(img), *common]
    b = case / "b"
    shutil.copytree(SMALL, b)
    names = sorted(p.name for p in b.iterdir())
    target = rng.choice(["manifest.json"] * 4 + ["forward.onnx", "weights.bin", GRAD,
                                                 "grad.logits__logits.onnx"] * 2 + names)
    data = (b / target).read_bytes()
    how = rng.choice(["flip", "truncate"] + (["json"] * 2 if target == "manifest.json" else []))
    if how == "json":
        (b / target).write_text(_json_mutation(data.decode(), rng))
    else:
        (b / target).write_bytes((_flip if how == "flip" else _truncate)(data, rng))
    fixed = ""
    if target != "manifest.json" and rng.random() < 0.7:
        rehash(b, target)  # a consistent manifest: the file's contents must be checked
        fixed = " +rehash"
    command = rng.choice([
        ["info", str(b)], ["layers", str(b)],
        ["dream", "--model", str(b), "--layer", "layer1", *common],
        ["dream", "--model", str(b), "--layer", "layer1", *common],
        ["class-viz", "--model", str(b), "--class", "3", *common[:-6], "--provider", "cpu",
         "-o", str(out)],
        ["invert", "--model", str(b), "--layer", "layer2", "--iterations", "1", "-o", str(out)],
    ])
    return f"{target} {how}{fixed}", command


def test_fuzzed_bundles_and_images_give_a_clean_error_or_a_valid_result(tmp_path):
    rng = random.Random(FUZZ_SEED)
    images = _images(tmp_path)
    outcomes = {0: 0, 1: 0, 2: 0}
    t0 = time.monotonic()
    for k in range(FUZZ_CASES):
        what, args = _fuzz_case(k, rng, tmp_path, images)
        where = f"seed {FUZZ_SEED} case {k}: {what}: ortviz {' '.join(args)}"
        r = runner.invoke(app, args)
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            where + "\n" + "".join(traceback.format_exception(r.exception)))
        assert r.exit_code in outcomes, f"{where}: exit {r.exit_code}\n{r.output}"
        outcomes[r.exit_code] += 1
        if os.environ.get("ORTVIZ_FUZZ_LOG"):
            print(f"{k:4d} {r.exit_code} {what:45s} {args[0]:9s} {r.output.splitlines()[-1][:150] if r.output else ''}")
        out_dir = tmp_path / f"c{k}" / "out"
        out = out_dir / "o.png"
        if r.exit_code == 0:
            assert not [l for l in r.output.splitlines() if l.startswith("error:")], where
            if args[0] not in ("info", "layers"):
                with Image.open(out) as im:
                    im.load()
                assert json.loads(out.with_suffix(".png.json").read_text())["status"] == "complete"
        else:
            errors = [l for l in r.output.splitlines() if l.startswith("error:")]
            assert len(errors) == 1 and "unexpected" not in errors[0], f"{where}\n{r.output}"
            assert "Traceback" not in r.output, where
            if r.exit_code == 2:  # bad input: found before any work, nothing written
                assert not out.exists(), f"{where}: exit {r.exit_code} left {out}"
            elif not out.exists():  # a run that failed with no good image to keep says so
                assert r.exit_code == 1 and ("no good image" in errors[0] or "cannot" in errors[0]), \
                    f"{where}: exit {r.exit_code} wrote nothing: {errors[0]}"
            else:  # a run that stopped keeps its last good image, complete, with its sidecar
                with Image.open(out) as im:
                    im.load()
                status = json.loads(out.with_suffix(".png.json").read_text())["status"]
                assert status.startswith("stopped:"), f"{where}: {status}"
        if out_dir.exists():
            assert no_temp_files(out_dir), where
        shutil.rmtree(tmp_path / f"c{k}")
    print(f"fuzz: {FUZZ_CASES} cases in {time.monotonic() - t0:.1f}s, exit codes {outcomes}")
    assert outcomes[0] > 10 and outcomes[2] > 100, outcomes  # both kinds of case were reached
