"""The speed rewrites of ortviz/export/speedups.py on one-op graphs: the ReLU6 mask read from the
Clip's output, and strided depthwise ConvGrads as a zero-spread + stride-1 Conv, against exact
or float64 references (the whole-network gradients are checked in test_default_model.py)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ortviz.export.speedups import speed_up

from tolerances import TOL_RAW, rel_err


def _run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _mask_graph(with_conv: bool, lo=0.0, hi=6.0, n=16) -> onnx.ModelProto:
    """x -> [1x1 identity Conv] -> Clip(lo, hi), and the training builder's Clip gradient
    dY * Cast(And(X >= lo, X <= hi)) as output dx."""
    shape = [1, 1, 1, n]
    nodes, x = [], "x"
    if with_conv:
        nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["X"], kernel_shape=[1, 1]))
        x = "X"
    nodes += [helper.make_node("Clip", [x, "lo", "hi"], ["y"]),
              helper.make_node("GreaterOrEqual", [x, "lo"], ["ge"]),
              helper.make_node("LessOrEqual", [x, "hi"], ["le"]),
              helper.make_node("And", ["ge", "le"], ["both"]),
              helper.make_node("Cast", ["both"], ["m"], to=TensorProto.FLOAT),
              helper.make_node("Mul", ["dy", "m"], ["dx"])]
    inits = [numpy_helper.from_array(np.float32(lo), "lo"), numpy_helper.from_array(np.float32(hi), "hi"),
             numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w"),
             numpy_helper.from_array(np.zeros(1, np.float32), "b")]
    g = helper.make_graph(nodes, "mask", [helper.make_tensor_value_info(v, TensorProto.FLOAT, shape) for v in ("x", "dy")],
                          [helper.make_tensor_value_info(v, TensorProto.FLOAT, shape) for v in ("y", "dx")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


# the bounds themselves, their float32 neighbours, a denormal, and both sides of the range
EDGES = np.array([-np.inf, -1.0, -1e-45, 0.0, 1e-45, 1e-38, 0.5, 3.0, np.nextafter(np.float32(6), np.float32(0)),
                  6.0, np.nextafter(np.float32(6), np.float32(7)), 7.0, np.inf, -0.0, 2.0, 5.999], np.float32)


def test_relu6_mask_reads_the_clip_output_and_is_torchs_relu6_gradient():
    model = speed_up(_mask_graph(with_conv=True))
    consumers = [n.op_type for n in model.graph.node if "X" in n.input]
    assert consumers == ["Clip"], f"the pre-activation must feed only the Clip (Conv+Clip fusion): {consumers}"
    seed = 3
    x = EDGES.reshape(1, 1, 1, -1)
    dy = (np.random.default_rng(seed).standard_normal(x.shape) + 2).astype(np.float32)
    _, dx = _run(model, {"x": x, "dy": dy})
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.relu6(xt).backward(torch.tensor(dy, dtype=torch.float64))
    ref = xt.grad.numpy()
    # one place differs from torch on purpose: an activation that is a subnormal (1e-45) gets
    # no gradient, as on hardware that flushes subnormals to zero (the mask's bounds are normal
    # floats so that such hardware reads them right; see speedups._inner_bounds)
    sub = (x != 0) & (np.abs(x) < np.finfo(np.float32).tiny) & (x > 0)
    ref = np.where(sub, 0.0, ref)
    assert np.array_equal(dx, ref), f"seed={seed}: at {x.ravel()[dx.ravel() != ref.ravel()]}: {dx} vs torch {ref}"
    consts = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer] + [
        onnx.numpy_helper.to_array(a.t) for n in model.graph.node for a in n.attribute if a.type == a.TENSOR]
    subnormal = [c for c in consts if c.dtype == np.float32 and
                 ((c != 0) & (np.abs(c) < np.finfo(np.float32).tiny)).any()]
    assert not subnormal, f"a subnormal constant: flush-to-zero hardware reads it as 0 ({subnormal})"


def test_relu6_mask_is_the_same_where_subnormals_are_flushed_to_zero():
    """WebGPU and GPUs in flush-to-zero mode read subnormal inputs as 0: the mask then must be
    what it is on the CPU for every input that is not itself a subnormal (emulated here by
    flushing the inputs, as such hardware does)."""
    model = speed_up(_mask_graph(with_conv=True))
    seed = 4
    x = EDGES.reshape(1, 1, 1, -1)
    dy = (np.random.default_rng(seed).standard_normal(x.shape) + 2).astype(np.float32)
    _, dx = _run(model, {"x": x, "dy": dy})
    def flush(t):  # what flush-to-zero hardware reads: subnormals as 0
        a = numpy_helper.to_array(t)
        return numpy_helper.from_array(np.where(np.abs(a) < np.finfo(np.float32).tiny, 0, a).astype(a.dtype),
                                       name=t.name)

    ftz = onnx.ModelProto()
    ftz.CopyFrom(model)
    for t in ftz.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(flush(t))
    for n in ftz.graph.node:
        for a in n.attribute:
            if a.type == a.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(flush(a.t))
    flushed = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x).astype(np.float32)
    _, dx_ftz = _run(ftz, {"x": flushed, "dy": dy})
    normal = np.abs(x) >= np.finfo(np.float32).tiny
    assert np.array_equal(dx[normal], dx_ftz[normal]), f"seed={seed}"
    assert (dx_ftz[x == 0] == 0).all() and (dx[x == 0] == 0).all(), f"seed={seed}: a unit at 0 got a gradient"


@pytest.mark.parametrize("lo,hi", [(0.0, 6.0), (-0.5, 0.7)])
def test_clip_mask_without_a_conv_stays_the_builders_inclusive_mask(lo, hi):
    model = speed_up(_mask_graph(with_conv=False, lo=lo, hi=hi))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Clip") == 1 and "Equal" in ops, ops
    seed = 4
    x = np.concatenate([EDGES[:8], np.float32([lo, hi, np.nextafter(np.float32(lo), np.float32(-1)),
                                                np.nextafter(np.float32(hi), np.float32(9)), 0.1, 0.2, 0.3, 0.4])])
    x = x.reshape(1, 1, 1, -1).astype(np.float32)
    dy = (np.random.default_rng(seed).standard_normal(x.shape) + 2).astype(np.float32)
    _, dx = _run(model, {"x": x, "dy": dy})
    ref = dy * ((x >= np.float32(lo)) & (x <= np.float32(hi)))
    assert np.array_equal(dx, ref), f"seed={seed}: {dx} vs {ref}"


def _conv_transpose(c, h, k, s, pads, op, d, group=None) -> tuple[onnx.ModelProto, np.ndarray]:
    rng = np.random.default_rng(k * 100 + s * 10 + d)
    group = c if group is None else group
    w = rng.standard_normal((c, c // group, k, k)).astype(np.float32)
    out = [(h - 1) * s + (k - 1) * d + 1 + op[i] - pads[i] - pads[2 + i] for i in range(2)]
    node = helper.make_node("ConvTranspose", ["dy", "w"], ["dx"], group=group, kernel_shape=[k, k],
                            strides=[s, s], pads=pads, output_padding=op, dilations=[d, d])
    g = helper.make_graph([node], "ct", [helper.make_tensor_value_info("dy", TensorProto.FLOAT, [1, c, h, h])],
                          [helper.make_tensor_value_info("dx", TensorProto.FLOAT, [1, c // group * group, *out])],
                          [numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), w


def _depthwise_transpose_f64(dy, w, s, pads, op, d):
    """Depthwise transposed convolution in float64 by scattering each input pixel."""
    _, c, h, wd = dy.shape
    k = w.shape[2]
    full = np.zeros((c, (h - 1) * s + (k - 1) * d + 1 + op[0], (wd - 1) * s + (k - 1) * d + 1 + op[1]))
    for i in range(k):
        for j in range(k):
            full[:, i * d:i * d + (h - 1) * s + 1:s, j * d:j * d + (wd - 1) * s + 1:s] += (
                w[:, 0, i, j, None, None].astype(np.float64) * dy[0].astype(np.float64))
    return full[None, :, pads[0]:full.shape[1] - pads[2], pads[1]:full.shape[2] - pads[3]]


# (kernel, stride, pads, output_padding, dilation): EfficientNet-Lite's 5x5/2 layers and others
CASES = [(5, 2, [2, 2, 2, 2], [1, 1], 1), (5, 2, [1, 2, 3, 0], [0, 1], 1), (7, 3, [3, 3, 3, 3], [2, 0], 1),
         (5, 2, [4, 4, 4, 4], [1, 1], 2)]


@pytest.mark.parametrize("k,s,pads,op,d", CASES)
def test_strided_depthwise_conv_grad_as_spread_and_conv(k, s, pads, op, d):
    model, w = _conv_transpose(8, 7, k, s, pads, op, d)
    fast = speed_up(model)
    kernels = [next(helper.get_attribute_value(a) for a in n.attribute if a.name == "kernel_shape")
               for n in fast.graph.node if n.op_type == "ConvTranspose"]
    assert kernels == [[1, 1]], f"the {k}x{k} ConvTranspose should become a 1x1 spread and a Conv: {kernels}"
    seed = k + s + d
    dy = np.random.default_rng(seed).standard_normal((1, 8, 7, 7)).astype(np.float32)
    (got,) = _run(fast, {"dy": dy})
    ref = _depthwise_transpose_f64(dy, w, s, pads, op, d)
    assert got.shape == ref.shape
    err = rel_err(got, ref)
    assert err <= TOL_RAW, f"k={k} s={s} pads={pads} op={op} d={d} seed={seed}: rel err {err:.2e}"


@pytest.mark.parametrize("k,group", [(3, None), (5, 1)])
def test_small_or_dense_strided_conv_grads_stay_conv_transpose(k, group):
    model, _ = _conv_transpose(8, 7, k, 2, [1, 1, 1, 1], [1, 1], 1, group=group)
    fast = speed_up(model)
    assert [n.op_type for n in fast.graph.node] == ["ConvTranspose"]
