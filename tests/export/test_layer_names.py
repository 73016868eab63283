"""One layer, one name, whichever exporter made the graph (issue 23: a torchvision-style stem,
conv1 then bn1, was ``conv1`` in the TorchScript exporter's table and ``bn1`` in dynamo's, whose
optimizer folds the BatchNorm into the Conv and gives it the BatchNorm's scope)."""

import pytest
import torch
from torch import nn

from ortviz.export.canonical import canonicalize
from ortviz.export.frontends import from_torch
from ortviz.export.layers import FUSION_KEY, select_layers


class Stem(nn.Module):
    """torchvision's ResNet layout in small: top-level conv1 (no bias), bn1, relu, maxpool."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@pytest.fixture(scope="module")
def tables():
    torch.manual_seed(0)
    net = Stem().eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for bn in (net.bn1, net.layer1[1]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    out = {}
    for exporter in ("torchscript", "dynamo"):
        raw = from_torch(net, 32, exporter=exporter)
        model, image, _ = canonicalize(raw, 32)
        out[exporter] = (raw, [(l.name, tuple(l.shape)) for l in select_layers(model, image, "default")])
    return out


def test_both_exporters_give_the_same_layer_table(tables):
    ts, dyn = tables["torchscript"][1], tables["dynamo"][1]
    assert ts == dyn, f"torchscript {ts} vs dynamo {dyn}"
    # the Conv+BatchNorm pair is named after the convolution, as the default model's _conv_stem
    assert [n for n, _ in ts] == ["conv1", "relu", "maxpool", "layer1", "avgpool"], ts


def test_the_dynamo_case_is_the_folded_one(tables):
    """The test above covers the optimizer's fold only while dynamo still folds that way: say so
    if it stops (then the rule in export.layers.module_scope is dead code)."""
    raw = tables["dynamo"][0]
    fused = [n for n in raw.graph.node if n.op_type == "Conv"
             and any(p.key == FUSION_KEY and "FuseBatchNormIntoConv" in p.value for p in n.metadata_props)]
    assert fused, "the dynamo exporter no longer folds BatchNorm into Conv; the scope rule is unused"
