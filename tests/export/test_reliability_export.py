"""Export-side reliability (docs/reliability.md): racing exports to one path, an interrupted
export, replacing what is not a bundle, and untrusted model and weights files."""

import os
import pickle
import shutil
import subprocess
import sys
import threading
import traceback

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from ortviz.bundle.reader import Bundle, BundleError
from ortviz.cli import app
from ortviz.export import writer

from nets import small_resnet
from support import ARTIFACTS, HERE

runner = CliRunner()
EXPORT = ["export", "torch", "nets:small_resnet", "--size", "32", "--layers", "layer1,layer2"]


def leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_racing_exports_to_one_path_never_corrupt_it(tmp_path):
    out = tmp_path / "same"
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    stop = threading.Event()
    reads, bad = [], []

    def read():  # a reader meanwhile: a whole bundle or a clean error, never anything else
        while not stop.is_set():
            try:
                Bundle.open(out)
                reads.append("ok")
            except BundleError:
                reads.append("error")
            except BaseException as exc:  # noqa: BLE001 - the test's point
                bad.append("".join(traceback.format_exception(exc)))
            stop.wait(0.02)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_, force in enumerate([False, True, True]):
            cmd = [sys.executable, "-m", "ortviz", *EXPORT, "-o", str(out)] + (["--force"] if force else [])
            procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
            results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
            for p in procs:
                p.stdout.close()
                p.stderr.close()
            codes = sorted(r[0] for r in results)
            if force:
                assert codes == [0, 0], results
            else:  # a fresh path: one creates it, the other is told it exists
                assert codes == [0, 2], results
                loser = next(r for r in results if r[0] == 2)
                assert "exists; pass --force to replace it" in loser[2], loser
            b = Bundle.open(out)  # verifies every hash, no extra file
            assert [l["name"] for l in b.layers] == ["layer1", "layer2"]
            assert leftovers(tmp_path, "same") == [], f"round {round_}"
    finally:
        stop.set()
        reader.join(30)
    assert not bad, bad[0]
    assert "ok" in reads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]  # the lock file is removed


def test_interrupted_export_keeps_the_old_bundle_and_no_temp_dir(tmp_path, monkeypatch):
    out = tmp_path / "b"
    shutil.copytree(ARTIFACTS / "small_resnet_torchscript", out)
    before = (out / "manifest.json").read_bytes()

    def interrupted(a, b):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.locking, "exchange", interrupted)
    r = runner.invoke(app, [*EXPORT, "-o", str(out), "--force"])
    assert r.exit_code == 130 and "interrupted" in r.output, r.output
    assert (out / "manifest.json").read_bytes() == before
    Bundle.open(out)
    assert leftovers(tmp_path, "b") == []


def test_force_never_replaces_what_is_not_a_bundle(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")
    r = runner.invoke(app, [*EXPORT, "-o", str(home), "--force"])
    assert r.exit_code == 2 and "is not an ortviz bundle" in r.output, r.output
    assert (home / "thesis.tex").read_text() == "mine" and leftovers(tmp_path, "home") == []


@pytest.mark.parametrize("case", ["absolute", "dotdot", "symlink"])
def test_onnx_model_whose_external_data_leaves_its_folder_is_refused(tmp_path, case):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    folder = tmp_path / "m"
    folder.mkdir()
    loc = {"absolute": str(secret), "dotdot": "../secret.bin", "symlink": "link.bin"}[case]
    if case == "symlink":
        (folder / "link.bin").symlink_to(secret)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1, 3, 2, 2],
                    data_location=TensorProto.EXTERNAL)
    w.external_data.add(key="location", value=loc)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["p"]),
         helper.make_node("Flatten", ["p"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / "evil.onnx").write_bytes(model.SerializeToString())
    r = runner.invoke(app, ["export", "onnx", str(folder / "evil.onnx"), "-o", str(tmp_path / "out"),
                            "--size", "8"])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_file_holding_code_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    weights = tmp_path / "w.pt"
    with open(weights, "wb") as f:
        pickle.dump({"state_dict": _Payload(str(marker))}, f)
    r = runner.invoke(app, [*EXPORT, "--weights", str(weights), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "cannot load weights" in r.output, r.output
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_whole_pickled_model_is_named_and_how_to_save_weights_is_said(tmp_path):
    """torch.save(model) instead of its state dict: one whole line (it was cut at torch's first
    sentence, which says nothing about why), naming the class and the fix; nothing unpickled."""
    weights = tmp_path / "whole.pt"
    torch.save(small_resnet(), weights)
    r = runner.invoke(app, [*EXPORT, "--weights", str(weights), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1, r.output
    assert "pickled nets.SmallResNet object, not a state dict" in line, line
    assert "torch.save(model.state_dict(), PATH)" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_torch_exporters_print_nothing_of_their_own(tmp_path, exporter):
    """The dynamo exporter logged 'torchvision is not installed' lines and a FutureWarning;
    the export prints ortviz's progress only."""
    r = subprocess.run([sys.executable, "-m", "ortviz", "export", "torch", "nets:small_resnet",
                        "-o", str(tmp_path / "out"), "--size", "32", "--exporter", exporter,
                        "--layers", "layer1"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(HERE)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("wrote "), r.stdout
    assert all(line.startswith("  ") for line in r.stderr.splitlines()), r.stderr[-2000:]
