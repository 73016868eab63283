"""One tiny torch classifier per ONNX op form the exporter must differentiate (export env only).

Each case is ``body`` (a module exercising the op on a 1x3x10x10 image) followed by a flatten
and a Linear to 5 logits, so the class-score gradient flows through the op. Sizes are odd or
uneven where that matters (ceil-mode pools, asymmetric pads, strided convs that drop pixels).
"""

import torch
import torch.nn.functional as F
from torch import nn

from nets import randomize_norms

SIZE = 10
CLASSES = 5


class Lambda(nn.Module):
    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.p = nn.ParameterList([nn.Parameter(p, requires_grad=False) for p in params])

    def forward(self, x):
        return self.fn(x, *self.p)


class OpNet(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        with torch.no_grad():
            n = self.body(torch.zeros(1, 3, SIZE, SIZE)).numel()
        self.head = nn.Linear(n, CLASSES)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))


def _bn(c):
    return randomize_norms(nn.BatchNorm2d(c))


def _r(*shape):
    return torch.randn(*shape)


def _cases():
    seq = nn.Sequential
    return {
        # convolutions
        "conv_grouped": seq(nn.Conv2d(3, 6, 3, padding=1, groups=3), nn.Conv2d(6, 4, 3, groups=2)),
        "conv_depthwise": nn.Conv2d(3, 3, 3, padding=1, groups=3),
        "conv_depthwise_5x5_strided": nn.Conv2d(3, 3, 5, stride=2, padding=2, groups=3),
        "conv_strided_2": nn.Conv2d(3, 4, 3, stride=2),
        "conv_strided_3": nn.Conv2d(3, 4, 2, stride=3, padding=1),
        "conv_dilated": nn.Conv2d(3, 4, 3, dilation=2, padding=2),
        "conv_asymmetric_pads": Lambda(lambda x, w: F.conv2d(F.pad(x, (0, 1, 2, 0)), w, stride=2),
                                       _r(4, 3, 3, 3)),
        "conv_transpose": nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
        "conv_transpose_grouped": nn.ConvTranspose2d(3, 6, 2, stride=2, groups=3),
        "batchnorm_eval": seq(nn.ReLU(), _bn(3)),  # after a ReLU: not folded into a conv
        # activations
        "relu": seq(nn.Conv2d(3, 4, 1), nn.ReLU()),
        "relu6_clip": seq(nn.Conv2d(3, 4, 1), nn.ReLU6()),
        "clip_range": Lambda(lambda x: torch.clamp(x, -0.5, 0.7)),
        "leaky_relu": nn.LeakyReLU(0.1),
        "sigmoid": nn.Sigmoid(),
        "hardsigmoid": nn.Hardsigmoid(),
        "hardswish": nn.Hardswish(),
        "silu": nn.SiLU(),
        "x_sigmoid_x": Lambda(lambda x: x * torch.sigmoid(x)),
        "gelu_erf": nn.GELU(),
        "gelu_tanh": nn.GELU(approximate="tanh"),
        "tanh": nn.Tanh(),
        "softmax_channels": nn.Softmax(dim=1),
        "softmax_last": nn.Softmax(dim=-1),
        "layernorm": nn.LayerNorm([SIZE]),
        "layernorm_2d": nn.LayerNorm([SIZE, SIZE]),
        # pools and reductions
        "maxpool_3x3_s2": nn.MaxPool2d(3, 2, 1),
        "maxpool_ceil": nn.MaxPool2d(3, 2, ceil_mode=True),
        "avgpool_pad_counted": nn.AvgPool2d(3, 2, 1, count_include_pad=True),
        "avgpool_pad_excluded": nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        "avgpool_ceil": nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False),
        "global_avgpool": nn.AdaptiveAvgPool2d(1),
        "reduce_mean": Lambda(lambda x: x.mean(dim=-1, keepdim=True) + x.mean(dim=(1, 2), keepdim=True)),
        # linear algebra
        "matmul": Lambda(lambda x, w: x @ w, _r(SIZE, 7)),
        "matmul_batched": Lambda(lambda x: x @ x.transpose(-1, -2)),
        # broadcasting arithmetic (residuals, squeeze-excitation)
        "broadcast_add_mul": Lambda(lambda x, a, b: x * a + b, _r(3, 1, 1), _r(1, SIZE)),
        "broadcast_sub_div": Lambda(lambda x, a: (x - x.mean(dim=1, keepdim=True)) / (a.abs() + 1),
                                    _r(3, 1, SIZE)),
        "squeeze_excitation": Lambda(lambda x, w: x * torch.sigmoid(F.conv2d(F.adaptive_avg_pool2d(x, 1), w)),
                                     _r(3, 3, 1, 1)),
        "residual": Lambda(lambda x, w: x + F.conv2d(x, w, padding=1), _r(3, 3, 3, 3)),
        # tensor plumbing
        "concat": Lambda(lambda x, w: torch.cat([x, F.conv2d(x, w, padding=1), x[:, :1]], 1),
                         _r(2, 3, 3, 3)),
        "split": Lambda(lambda x: torch.cat([s * (k + 1) for k, s in enumerate(torch.split(x, [1, 2], 1))], 1)),
        "chunk_spatial": Lambda(lambda x: (lambda a, b: a * b)(*torch.chunk(x, 2, dim=2))),
        "slice_steps": Lambda(lambda x: x[:, :, 1:-1, ::2] + x[:, :, 2:, 1::2]),
        "slice_negative_step": Lambda(lambda x: torch.flip(x, [3])[:, :, :, 2:] * x[:, :, :, :-2]),
        "gather_index": Lambda(lambda x: x[:, 1] * x[:, 2]),
        "gather_repeated": Lambda(lambda x: x[:, :, torch.tensor([0, 3, 3, 9])]),
        "reshape_transpose": Lambda(lambda x: x.reshape(1, 3, 5, 20).permute(0, 3, 1, 2).contiguous() * 2),
        "flatten_unflatten": Lambda(lambda x: torch.flatten(x, 2).transpose(1, 2).reshape(1, SIZE, SIZE, 3)),
        # pads inside the network (OpenVINO's EP refuses a Pad reading the image input itself)
        "pad_constant": Lambda(lambda x: F.pad(torch.relu(x), (1, 2, 0, 3), value=0.5)),
        "pad_reflect": Lambda(lambda x: F.pad(torch.relu(x), (1, 2, 2, 1), mode="reflect")),
        "dropout_identity": seq(nn.Dropout(0.5), nn.Identity(), nn.Dropout2d(0.3)),
    }


CASES = sorted(_cases())


def opnet(name: str) -> OpNet:
    torch.manual_seed(0)
    return OpNet(_cases()[name]).eval()


# -- op forms only an ONNX file has (torch exports them otherwise) ---------------------------
# name -> (opset, ONNX nodes from "image" to "body", torch function of the same body)
def _onnx_cases():
    from onnx import helper

    def one(op, opset, torch_fn, extra_inputs=(), **attrs):
        return opset, [helper.make_node(op, ["pre", *extra_inputs], ["body"], **attrs)], torch_fn

    relu = torch.relu  # every body starts with a Relu: the op reads an intermediate tensor
    ln_w, ln_b = torch.randn(3, SIZE, SIZE), torch.randn(3, SIZE, SIZE)
    return {
        "onnx_gelu_opset20": one("Gelu", 20, lambda x: F.gelu(relu(x) - 0.5)),
        "onnx_gelu_tanh_opset20": one("Gelu", 20, lambda x: F.gelu(relu(x) - 0.5, approximate="tanh"),
                                      approximate="tanh"),
        "onnx_hardsigmoid_alpha_beta": one("HardSigmoid", 17,
                                           lambda x: torch.clamp(0.3 * (relu(x) - 0.5) + 0.4, 0, 1),
                                           alpha=0.3, beta=0.4),
        "onnx_layernorm_axis1_opset17": (17, "layernorm", (ln_w, ln_b)),
        "onnx_layernorm_axis1_opset18": (18, "layernorm", (ln_w, ln_b)),
        "onnx_pad_edge": (18, "pad", "edge"),
        "onnx_pad_wrap": (19, "pad", "wrap"),
    }


class OnnxOpNet(nn.Module):
    """The torch twin of an ONNX op case: Relu - 0.5, the op, flatten, Linear."""

    def __init__(self, fn, n):
        super().__init__()
        self.fn = fn
        self.head = nn.Linear(n, CLASSES)

    def forward(self, x):
        return self.head(torch.flatten(self.fn(x), 1))


def onnx_opnet(name: str):
    """(ONNX model, torch twin) for an ONNX-only op case."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(1)
    opset, nodes, fn = _onnx_cases()[name]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    if nodes == "layernorm":
        w, b = fn
        inits += [numpy_helper.from_array(w.numpy(), "ln_w"), numpy_helper.from_array(b.numpy(), "ln_b")]
        nodes = [helper.make_node("LayerNormalization", ["pre", "ln_w", "ln_b"], ["body"], axis=1,
                                  epsilon=1e-3)]
        fn = (lambda w, b: lambda x: F.layer_norm(torch.relu(x) - 0.5, (3, SIZE, SIZE),
                                                   w.double(), b.double(), 1e-3))(w, b)
    elif nodes == "pad":
        mode = fn
        inits.append(numpy_helper.from_array(np.array([0, 0, 2, 1, 0, 0, 1, 3], np.int64), "pads"))
        nodes = [helper.make_node("Pad", ["pre", "pads"], ["body"], mode=mode)]
        tmode = {"edge": "replicate", "wrap": "circular"}[mode]
        fn = (lambda m: lambda x: F.pad(torch.relu(x) - 0.5, (1, 3, 2, 1), mode=m))(tmode)
    else:
        body = fn
        fn = lambda x: body(x)  # noqa: E731
    with torch.no_grad():
        n = fn(torch.zeros(1, 3, SIZE, SIZE).double()).numel()
    twin = OnnxOpNet(fn, n).eval()
    w = twin.head.weight.detach().numpy().T.copy()
    inits += [numpy_helper.from_array(w, "head_w"),
              numpy_helper.from_array(twin.head.bias.detach().numpy(), "head_b")]
    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["r"]), helper.make_node("Sub", ["r", "half"], ["pre"]),
         *nodes, helper.make_node("Flatten", ["body"], ["flat"]),
         helper.make_node("Gemm", ["flat", "head_w", "head_b"], ["logits"])],
        name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model, twin


ONNX_CASES = sorted(_onnx_cases())


# The ONNX op types each case's source model (what the front end gives the exporter) must hold,
# so a case cannot quietly test some other op form than its name says.
OP_TYPES = {
    "conv_grouped": {"Conv"}, "conv_depthwise": {"Conv"}, "conv_depthwise_5x5_strided": {"Conv"},
    "conv_strided_2": {"Conv"}, "conv_strided_3": {"Conv"}, "conv_dilated": {"Conv"},
    "conv_asymmetric_pads": {"Pad", "Conv"}, "conv_transpose": {"ConvTranspose"},
    "conv_transpose_grouped": {"ConvTranspose"}, "batchnorm_eval": {"BatchNormalization"},
    "relu": {"Relu"}, "relu6_clip": {"Clip"}, "clip_range": {"Clip"}, "leaky_relu": {"LeakyRelu"},
    "sigmoid": {"Sigmoid"}, "hardsigmoid": {"HardSigmoid"}, "hardswish": {"HardSwish"},
    "silu": {"Sigmoid", "Mul"}, "x_sigmoid_x": {"Sigmoid", "Mul"}, "gelu_erf": {"Erf"},
    "gelu_tanh": {"Tanh"}, "tanh": {"Tanh"}, "softmax_channels": {"Softmax"},
    "softmax_last": {"Softmax"}, "layernorm": {"LayerNormalization"},
    "layernorm_2d": {"LayerNormalization"}, "maxpool_3x3_s2": {"MaxPool"}, "maxpool_ceil": {"MaxPool"},
    "avgpool_pad_counted": {"AveragePool"}, "avgpool_pad_excluded": {"AveragePool"},
    "avgpool_ceil": {"AveragePool"}, "global_avgpool": {"GlobalAveragePool"},
    "reduce_mean": {"ReduceMean"}, "matmul": {"MatMul"}, "matmul_batched": {"MatMul", "Transpose"},
    "broadcast_add_mul": {"Add", "Mul"}, "broadcast_sub_div": {"Sub", "Div"},
    "squeeze_excitation": {"GlobalAveragePool", "Sigmoid", "Mul"}, "residual": {"Add", "Conv"},
    "concat": {"Concat", "Slice"}, "split": {"Split", "Concat"}, "chunk_spatial": {"Shape", "Slice"},  # torch writes chunk as Slices of Shape arithmetic
    "slice_steps": {"Slice"}, "slice_negative_step": {"Slice"}, "gather_index": {"Gather"},
    "gather_repeated": {"Gather"}, "reshape_transpose": {"Reshape", "Transpose"},
    "flatten_unflatten": {"Flatten", "Transpose", "Reshape"}, "pad_constant": {"Pad"},
    "pad_reflect": {"Pad"}, "dropout_identity": set(),
    "onnx_gelu_opset20": {"Gelu"}, "onnx_gelu_tanh_opset20": {"Gelu"},
    "onnx_hardsigmoid_alpha_beta": {"HardSigmoid"}, "onnx_layernorm_axis1_opset17": {"LayerNormalization"},
    "onnx_layernorm_axis1_opset18": {"LayerNormalization"}, "onnx_pad_edge": {"Pad"}, "onnx_pad_wrap": {"Pad"},
}
# Where the dynamo exporter writes another form than the TorchScript one.
DYNAMO_OP_TYPES = dict(OP_TYPES, **{
    "chunk_spatial": {"Split"}, "conv_asymmetric_pads": {"Conv"}, "flatten_unflatten": {"Reshape", "Transpose"},
    "gather_repeated": {"GatherND"}, "gelu_erf": {"Gelu"}, "gelu_tanh": {"Gelu"},
    "global_avgpool": {"ReduceMean"}, "squeeze_excitation": {"ReduceMean", "Sigmoid", "Mul"},
})
