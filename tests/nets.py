"""Small torch classifiers for the exporter's tests (export environment only).

Their top-level module names (``stem``, ``layer2``) are the names the exporter gives its layers,
so tests read the same tensors in torch with forward hooks.
"""

import torch
from torch import nn


class Block(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm, ReLU, a residual add (1x1 strided
    projection when the shape changes)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.proj is None else self.proj(x)))


class SmallResNet(nn.Module):
    def __init__(self, classes=10, width=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 5, 2, 2, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1)             # overlapping 3x3/s2 windows
        self.layer1 = Block(width, width, 1)
        self.layer2 = Block(width, 2 * width, 2)
        self.layer3 = Block(2 * width, 4 * width, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.pool(self.stem(x)))))
        return self.fc(torch.flatten(self.gap(x), 1))


def randomize_norms(net: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (and LayerNorm ones), so that
    folding and rewriting them is tested; draws from torch's global generator."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


def small_resnet():
    torch.manual_seed(0)
    return randomize_norms(SmallResNet()).eval()
