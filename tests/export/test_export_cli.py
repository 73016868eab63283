"""`ortviz export onnx|torch` through the CLI, the embedded default's recipe, and bad models."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from ortviz.bundle.reader import Bundle
from ortviz.cli import app

from nets import small_resnet
from reference import loss_and_grad
from support import ARTIFACTS, HERE
from tolerances import TOL_TORCH, rel_err

ROOT = HERE.parent
runner = CliRunner()


def onnx_file(tmp_path: Path) -> Path:
    """A plain ONNX classifier with a dynamic batch axis, as a model zoo would ship it."""
    path = tmp_path / "small_resnet.onnx"
    torch.onnx.export(small_resnet(), (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["data"], output_names=["prob_logits"],
                      dynamic_axes={"data": {0: "N"}, "prob_logits": {0: "N"}}, opset_version=13)
    return path


def test_export_onnx_cli_gives_a_bundle_matching_torch(tmp_path):
    src = onnx_file(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing {i}" for i in range(10)))
    out = ARTIFACTS / "small_resnet_onnx"
    r = runner.invoke(app, ["export", "onnx", str(src), "-o", str(out), "--size", "32",
                            "--labels", str(labels), "--force"])
    assert r.exit_code == 0, r.output
    b = Bundle.open(out)
    assert b.input["name"] == "data" and b.input["shape"] == [1, 3, 32, 32]
    assert b.labels[3] == "thing 3"
    entry = b.graph("logits", "logits")
    rng = np.random.default_rng(7)
    image = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    weights = {"class_weights": rng.standard_normal((1, 10)).astype(np.float32),
               "log_softmax_weights": rng.standard_normal((1, 10)).astype(np.float32)}
    sess = ort.InferenceSession(str(b.path_of(entry.file)), providers=["CPUExecutionProvider"])
    _, grad = sess.run(["loss", entry.outputs["grad"]], {"data": image, **weights})
    _, ref = loss_and_grad(small_resnet(), "logits", "logits", image, weights)
    err = rel_err(grad, ref)
    assert err <= TOL_TORCH, f"seed=7: rel err {err:.2e}"


def test_export_torch_cli_with_weights_file(tmp_path):
    weights = tmp_path / "w.pt"
    net = small_resnet()
    with torch.no_grad():
        net.fc.bias.add_(1.0)
    torch.save(net.state_dict(), weights)
    out = tmp_path / "b"
    r = runner.invoke(app, ["export", "torch", "nets:small_resnet", "--weights", str(weights),
                            "-o", str(out), "--size", "32", "--exporter", "dynamo",
                            "--layers", "layer1,layer3"])
    assert r.exit_code == 0, r.output
    b = Bundle.open(out)
    assert [l["name"] for l in b.layers] == ["layer1", "layer3"]
    sess = ort.InferenceSession(str(b.forward_path), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 32, 32), np.float32)
    got = sess.run([b.manifest["logits"]["name"]], {"image": x})[0]
    want = net(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(got, want, atol=1e-4), "the --weights state dict was not loaded"


def test_default_bundle_rebuilds_from_its_recipe(tmp_path):
    """Byte for byte, bundle id included: every value the exporter stores is computed in numpy
    float64 and rounded once (export.folding), never by a CPU-dispatched kernel, so the bundle
    committed on one x86-64 machine is the bundle any other rebuilds."""
    committed = Bundle.open(ROOT / "models" / "efficientnet-lite0")
    work = tmp_path / "repo"
    (work / "models").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "imagenet_labels.tsv", work / "models")
    recipe = committed.manifest["model"]["recipe"].split()
    assert recipe[0] == "ortviz"
    r = subprocess.run([sys.executable, "-m", "ortviz", *recipe[1:]], cwd=work,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = work / "models" / "efficientnet-lite0"
    rebuilt = json.loads((out / "manifest.json").read_text())
    assert rebuilt["bundle_id"] == committed.manifest["bundle_id"], "the rebuilt bundle id differs"
    assert set(rebuilt["files"]) == set(committed.manifest["files"])
    for name in sorted(rebuilt["files"]) + ["manifest.json"]:
        new, old = (out / name).read_bytes(), (ROOT / "models" / "efficientnet-lite0" / name).read_bytes()
        assert new == old, f"{name}: the rebuilt file differs from the committed one"


def _bad(tmp_path, model, name="bad.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return runner.invoke(app, ["export", "onnx", str(path), "-o", str(tmp_path / "out"), "--size", "8"])


def _tiny(nodes, inputs, outputs, domain_ops=(), opset=17, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domain_ops]
    return helper.make_model(graph, opset_imports=opsets)


IMG = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])


@pytest.mark.parametrize("case,expect", [
    ("two_inputs", "expected one input"),
    ("two_outputs", "expected one output"),
    ("not_image", "not a 4-D float tensor"),
    ("custom_op", "unsupported op com.example.Mystery (node 'mystery')"),
    ("control_flow", "dynamic control flow"),
    ("no_gradient", "no input gradient for op Celu"),
    ("dilated_avgpool", "cannot lower AveragePoolGrad node"),
    ("convtranspose_output_shape", "output_shape/auto_pad are not supported"),
])
def test_models_that_are_not_classifiers_are_refused_in_one_line(tmp_path, case, expect):
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    flat = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    if case == "two_inputs":
        m = _tiny(flat, [IMG, helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])], [y])
    elif case == "two_outputs":
        m = _tiny(flat, [IMG], [y, helper.make_tensor_value_info("p", TensorProto.FLOAT, None)])
    elif case == "not_image":
        m = _tiny([helper.make_node("Identity", ["v"], ["y"])],
                  [helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 3])], [y])
    elif case == "no_gradient":  # no gradient and no rewrite; saved at the newest IR version, which
        # the exporter brings down to what the training build reads
        m = _tiny([helper.make_node("Celu", ["x"], ["c"]), *flat[:1],
                   helper.make_node("Flatten", ["p"], ["y"])], [IMG], [y])
        m.graph.node[1].input[0] = "c"
    elif case == "dilated_avgpool":
        m = _tiny([helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], dilations=[2, 2]),
                   helper.make_node("GlobalAveragePool", ["a"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])],
                  [IMG], [y], opset=19)
    elif case == "convtranspose_output_shape":
        w = onnx.numpy_helper.from_array(np.ones((3, 3, 3, 3), np.float32), "w")
        m = _tiny([helper.make_node("ConvTranspose", ["x", "w"], ["a"], strides=[2, 2], output_shape=[16, 16]),
                   helper.make_node("GlobalAveragePool", ["a"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])],
                  [IMG], [y], initializers=[w])
    elif case == "custom_op":
        m = _tiny([helper.make_node("Mystery", ["x"], ["p"], name="mystery", domain="com.example"),
                   helper.make_node("Flatten", ["p"], ["y"])], [IMG], [y], domain_ops=["com.example"])
    else:
        body = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [],
                                 [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
        m = _tiny([helper.make_node("Constant", [], ["c"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True])),
                   helper.make_node("If", ["c"], ["p"], then_branch=body, else_branch=body),
                   helper.make_node("GlobalAveragePool", ["p"], ["q"]),
                   helper.make_node("Flatten", ["q"], ["y"])], [IMG], [y])
    r = _bad(tmp_path, m)
    assert r.exit_code == 2, r.output
    assert expect in r.output and "Traceback" not in r.output
    lines = r.output.strip().splitlines()  # progress lines (indented or "canonical graph") may precede
    assert lines[-1].startswith("error: ") and expect in lines[-1], r.output
    assert [l for l in lines if not l.startswith(("  ", "canonical graph:"))] == lines[-1:], r.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


@pytest.mark.parametrize("content", [b"", b"this is not a protobuf" * 10])
def test_unreadable_model_files_are_refused(tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    r = runner.invoke(app, ["export", "onnx", str(path), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and r.output.startswith("error: "), r.output
    assert not (tmp_path / "out").exists()


def test_missing_model_file_is_refused(tmp_path):
    r = runner.invoke(app, ["export", "onnx", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no such model file" in r.output


def test_bad_factory_and_unknown_layer(tmp_path):
    r = runner.invoke(app, ["export", "torch", "nets_nope:f", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "cannot import 'nets_nope'" in r.output
    r = runner.invoke(app, ["export", "torch", "nets:small_resnet", "-o", str(tmp_path / "o"),
                            "--size", "32", "--layers", "layr2"])
    assert r.exit_code == 2 and "unknown layer 'layr2'" in r.output and "layer2" in r.output
    assert not (tmp_path / "o").exists()


def test_existing_output_is_kept_without_force(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["export", "torch", "nets:small_resnet", "-o", str(out), "--size", "32"])
    assert r.exit_code == 2 and "--force" in r.output
    assert (out / "keep.txt").read_text() == "mine"


def test_export_batched_bundle_gradients_are_per_image(tmp_path):
    """--batch 2: every graph takes two images; each image's gradient is its own (checked
    against torch float64 on the batch). The runtime stage runs techniques on this bundle."""
    out = ARTIFACTS / "small_resnet_batch2"
    r = runner.invoke(app, ["export", "torch", "nets:small_resnet", "-o", str(out), "--size", "32",
                            "--batch", "2", "--layers", "layer1,layer3", "--force"])
    assert r.exit_code == 0, r.output
    b = Bundle.open(out)
    assert b.input["shape"] == [2, 3, 32, 32]
    seed = 13
    rng = np.random.default_rng(seed)
    for objective, layer in [("logits", "logits"), ("features", "layer3")]:
        entry = b.graph(objective, layer)
        feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in entry.inputs.items()}
        sess = ort.InferenceSession(str(b.path_of(entry.file)), providers=["CPUExecutionProvider"])
        loss, grad = sess.run(["loss", entry.outputs["grad"]], feeds)
        image = feeds.pop("image")
        ref_loss, ref = loss_and_grad(small_resnet(), objective, layer, image, feeds)
        loss = float(np.asarray(loss).reshape(()))  # the batch's one loss
        assert loss == pytest.approx(ref_loss, rel=TOL_TORCH, abs=1e-6), \
            f"{entry.file} seed={seed}: loss {loss} vs torch {ref_loss}"
        err = rel_err(grad, ref)
        assert err <= TOL_TORCH, f"{entry.file} seed={seed}: rel err {err:.2e}"
        _, alone = loss_and_grad(small_resnet(), objective, layer, image[1:],
                                 {k: v[1:] for k, v in feeds.items()})
        # each image's gradient is its own: image 1 alone gives the same
        err = rel_err(grad[1:], alone)
        assert err <= TOL_TORCH, f"{objective} seed={seed}: image 1 depends on image 0 ({err:.2e})"


def test_export_onnx_takes_a_fixed_input_size_and_leaves_nothing_but_the_bundle(tmp_path):
    src = tmp_path / "fixed.onnx"
    torch.onnx.export(small_resnet().eval(), torch.zeros(1, 3, 32, 32), str(src), dynamo=False,
                      input_names=["input"], output_names=["logits"])  # no dynamic axes: fixed
    r = subprocess.run([sys.executable, "-m", "ortviz", "export", "onnx", str(src), "-o",
                        str(tmp_path / "out"), "--layers", "layer1"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert Bundle.open(tmp_path / "out").input["shape"] == [1, 3, 32, 32]
    assert "onnxruntime" not in r.stderr, f"native log lines leaked:\n{r.stderr[-1500:]}"
    assert all(line.startswith("  ") for line in r.stderr.splitlines()), r.stderr  # progress only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.onnx", "out"]  # no out.lock
    bad = subprocess.run([sys.executable, "-m", "ortviz", "export", "onnx", str(src), "-o",
                          str(tmp_path / "o2"), "--size", "64"], capture_output=True, text=True)
    assert bad.returncode == 2 and "fixed size [1, 3, 32, 32]" in bad.stderr, bad.stderr
