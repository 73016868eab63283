"""Exports hold the same bytes on every CPU: each value the exporter computes is a float64 fold
rounded once, checked here against an independent float64 computation (any CPU-dispatched
float32 kernel on the path, torch's or onnxruntime's, differs from it in the last bits)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ortviz.export.canonical import canonicalize
from ortviz.export.folding import fold_batchnorm
from ortviz.export.frontends import from_torch
from ortviz.export.zoo import efficientnet_lite0

from support import HERE

ROOT = HERE.parent


def _reference_fold(w, b, gamma, beta, mean, var, eps):
    """Conv+BatchNorm folded in float64, written independently of ortviz.export.folding."""
    w64, g64 = w.astype(np.float64), gamma.astype(np.float64)
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + np.float64(np.float32(eps)))
    s = g64 * inv_std
    new_w = np.empty_like(w64)
    for o in range(w64.shape[0]):  # one output channel at a time, no broadcasting
        new_w[o] = w64[o] * s[o]
    new_b = (b.astype(np.float64) - mean.astype(np.float64)) * s + beta.astype(np.float64)
    return new_w.astype(np.float32), new_b.astype(np.float32)


def _conv_bn(seed, bias, groups, bn_is_output):
    rng = np.random.default_rng(seed)
    c, m, eps = 4, 8, 1e-3
    w = rng.standard_normal((m, c // groups, 3, 3)).astype(np.float32)
    inits = {"w": w, "gamma": rng.uniform(0.1, 2, m), "beta": rng.standard_normal(m),
             "mean": rng.standard_normal(m), "var": rng.uniform(1e-4, 3, m)}
    inits = {k: np.asarray(v, np.float32) for k, v in inits.items()}
    if bias:
        inits["b"] = rng.standard_normal(m).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c"], pads=[1] * 4,
                              group=groups),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"],
                              epsilon=eps)]
    out = "y"
    if not bn_is_output:
        nodes.append(helper.make_node("Relu", ["y"], ["z"]))
        out = "z"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 5, 5])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, inits, eps


@pytest.mark.parametrize("seed,bias,groups,bn_is_output", [
    (0, True, 1, False), (1, False, 1, False), (2, True, 2, True), (3, False, 4, True)])
def test_batchnorm_fold_equals_the_float64_reference_bit_for_bit(seed, bias, groups, bn_is_output):
    model, inits, eps = _conv_bn(seed, bias, groups, bn_is_output)
    before = model.SerializeToString()
    x = np.random.default_rng(100 + seed).standard_normal((1, 4, 5, 5)).astype(np.float32)
    want_out = ort.InferenceSession(before, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert fold_batchnorm(model) == 1, f"seed={seed}: the BatchNorm was not folded"
    assert [n.op_type for n in model.graph.node] == ["Conv"] + ([] if bn_is_output else ["Relu"])
    conv = model.graph.node[0]
    got = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    ref_w, ref_b = _reference_fold(inits["w"], inits.get("b", np.zeros(8, np.float32)), inits["gamma"],
                                   inits["beta"], inits["mean"], inits["var"], eps)
    assert got[conv.input[1]].tobytes() == ref_w.tobytes(), f"seed={seed}: folded weights differ"
    assert got[conv.input[2]].tobytes() == ref_b.tobytes(), f"seed={seed}: folded bias differs"
    got_out = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    err = np.abs(got_out - want_out).max() / np.abs(want_out).max()
    assert err <= 1e-5, f"seed={seed}: the folded graph computes another function (rel {err:.2e})"


def test_a_batchnorm_that_shares_its_conv_output_is_not_folded():
    model, _, _ = _conv_bn(5, True, 1, False)
    model.graph.node.append(helper.make_node("Relu", ["c"], ["c2"]))  # a second reader of the Conv
    model.graph.output.append(helper.make_tensor_value_info("c2", TensorProto.FLOAT, None))
    assert fold_batchnorm(model) == 0


def test_the_default_bundle_holds_the_float64_fold_of_its_torch_weights():
    """Each Conv followed by a BatchNorm in EfficientNet-Lite0: the committed bundle's weights
    are exactly the float64 fold of the module's float32 parameters, rounded once."""
    net = efficientnet_lite0()
    forward = onnx.load(str(ROOT / "models" / "efficientnet-lite0" / "forward.onnx"))
    stored = {i.name: numpy_helper.to_array(i) for i in forward.graph.initializer}
    convs = [n for n in forward.graph.node if n.op_type == "Conv"]
    by_weight = {n.input[1]: n for n in convs}
    pairs, last_conv = [], None
    for name, mod in net.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            last_conv = (name, mod)
        elif isinstance(mod, torch.nn.BatchNorm2d) and last_conv is not None:
            pairs.append((last_conv, mod))
            last_conv = None
    assert len(pairs) == len(convs) == 49, (len(pairs), len(convs))
    for (name, conv), bn in pairs:
        node = by_weight.get(f"{name}.weight/bnfold")
        assert node is not None, f"{name}: no folded weight in the bundle"
        p = lambda t: t.detach().numpy()
        b = p(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels, np.float32)
        ref_w, ref_b = _reference_fold(p(conv.weight), b, p(bn.weight), p(bn.bias),
                                       p(bn.running_mean), p(bn.running_var), bn.eps)
        assert stored[node.input[1]].tobytes() == ref_w.tobytes(), f"{name}: weights are not the float64 fold"
        assert stored[node.input[2]].tobytes() == ref_b.tobytes(), f"{name}: bias is not the float64 fold"


def test_every_stored_weight_is_a_torch_parameter_or_a_float64_fold():
    """No other value reaches the canonical graph: any float tensor of more than a few elements
    is a parameter of the module byte for byte, or a BatchNorm fold checked above. (A value
    computed by torch's or onnxruntime's float32 kernels would be neither.)"""
    net = efficientnet_lite0()
    params = {t.detach().numpy().astype(np.float32).tobytes() for t in net.state_dict().values()}
    model = from_torch(net, 224)
    assert any(n.op_type == "BatchNormalization" for n in model.graph.node), \
        "the torch exporter folded BatchNorm itself (with the CPU's own kernels)"
    canon, _, _ = canonicalize(model, 224)
    assert not any(n.op_type == "BatchNormalization" for n in canon.graph.node)
    floats = [i for i in canon.graph.initializer
              if i.data_type == TensorProto.FLOAT and int(np.prod(i.dims)) > 16]
    folds = [i for i in canon.graph.initializer if "/bnfold" in i.name]
    others = [i.name for i in floats if "/bnfold" not in i.name
              and numpy_helper.to_array(i).tobytes() not in params]
    assert len(folds) == 2 * 49 and not others, f"values from elsewhere: {others[:5]}"


def test_batchnorms_whose_tensors_torch_shares_through_identity_are_folded_too():
    """Fresh BatchNorms hold equal tensors (ones, zeros), which the TorchScript exporter without
    constant folding shares through Identity nodes: they are folded like any other (they were
    left as Mul + Add, a slower graph with a layer of their own)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(8),
                              torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, 1, 1), torch.nn.BatchNorm2d(8),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 5)).eval()
    model = from_torch(net, 32)
    assert any(n.op_type == "Identity" for n in model.graph.node), "torch no longer shares them"
    canon, _, _ = canonicalize(model, 32)
    ops = [n.op_type for n in canon.graph.node]
    assert "BatchNormalization" not in ops and "Mul" not in ops, ops
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(canon.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    want = net(torch.from_numpy(x)).detach().numpy()
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), "seed=3: the folded graph differs"
