"""Small torch classifiers in the style of real architectures (export environment only).

Each is a few channels wide at a small input size, so exports are quick, but keeps its
family's ops and structure: VGG, Inception (GoogLeNet), MobileNetV3, SqueezeNet, ViT. Weights
are random with a fixed seed; BatchNorm and LayerNorm get non-trivial statistics and affine
parameters, so folding them is tested.

As in tests/nets.py, the top-level module names (``stage3``, ``block1``) are the names the
exporter gives its layers, so tests read the same tensors in torch with forward hooks: every op
of a network runs inside a top-level module, except flattening (or taking the class token)
before the classifier.
"""

import torch
from torch import nn

from nets import randomize_norms

CLASSES = 10


def _seeded(cls, seed: int) -> nn.Module:
    """``cls()`` with its default init drawn under ``seed``, then non-trivial norm parameters."""
    torch.manual_seed(seed)
    return randomize_norms(cls()).eval()


def _conv_bn(cin, cout, k, stride=1, groups=1, act=nn.ReLU, eps=1e-5):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=eps)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


# VGG ---------------------------------------------------------------------------------------
class VGG(nn.Module):
    """Five stages of 3x3 convs (with bias, no BatchNorm) and ReLU, each ending in a 2x2/2 max
    pool with ceil_mode=True. At 40x40 the maps are 20, 10, 5, 3, 2: the last two pools see odd
    sizes, where ceil_mode adds a partial window. Classifier: Linear, ReLU, Dropout, Linear."""

    def __init__(self, widths=(8, 16, 16, 32, 32), convs=(1, 1, 2, 2, 2)):
        super().__init__()
        cin = 3
        for i, (w, n) in enumerate(zip(widths, convs), 1):
            layers = []
            for _ in range(n):
                layers += [nn.Conv2d(cin, w, 3, 1, 1), nn.ReLU()]
                cin = w
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            setattr(self, f"stage{i}", nn.Sequential(*layers))
        self.classifier = nn.Sequential(nn.Linear(cin * 2 * 2, 32), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(32, CLASSES))

    def forward(self, x):
        for i in range(1, 6):
            x = getattr(self, f"stage{i}")(x)
        return self.classifier(torch.flatten(x, 1))


# Inception ---------------------------------------------------------------------------------
def _basic(cin, cout, k):  # torchvision's BasicConv2d: conv, BatchNorm (eps 1e-3), ReLU
    return _conv_bn(cin, cout, k, eps=1e-3)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5 (or two
    3x3, as Inception v3 factors it); a stride-1 3x3 pool -> 1x1 (max pool as GoogLeNet, or an
    average pool that does not count the padding)."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, cp, factored=False, avg_pool=False):
        super().__init__()
        self.branch1 = _basic(cin, c1, 1)
        self.branch3 = nn.Sequential(_basic(cin, c3r, 1), _basic(c3r, c3, 3))
        wide = [_basic(c5r, c5, 3), _basic(c5, c5, 3)] if factored else [_basic(c5r, c5, 5)]
        self.branch5 = nn.Sequential(_basic(cin, c5r, 1), *wide)
        pool = (nn.AvgPool2d(3, 1, 1, count_include_pad=False) if avg_pool
                else nn.MaxPool2d(3, 1, 1))
        self.branch_pool = nn.Sequential(pool, _basic(cin, cp, 1))

    def forward(self, x):
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([b(x) for b in branches], 1)


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_basic(3, 8, 3), nn.MaxPool2d(3, 2, ceil_mode=True))     # 16x16
        self.block1 = InceptionBlock(8, 4, 4, 8, 2, 4, 4)                                   # 20 ch
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)                                        # 8x8
        self.block2 = InceptionBlock(20, 8, 6, 8, 4, 6, 6, factored=True, avg_pool=True)     # 28 ch
        self.avgpool = nn.AvgPool2d(8)                   # GoogLeNet's fixed-size final average pool
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(28, CLASSES)

    def forward(self, x):
        x = self.avgpool(self.block2(self.pool(self.block1(self.stem(x)))))
        return self.fc(self.dropout(torch.flatten(x, 1)))


# MobileNetV3 -------------------------------------------------------------------------------
class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.scale = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.scale(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when it would not widen), depthwise kxk (maybe strided), optional
    squeeze-excitation, 1x1 linear projection; a residual add when the shape is kept."""

    def __init__(self, cin, exp, cout, k, stride, se, act):
        super().__init__()
        eps = 1e-3
        layers = [] if exp == cin else [_conv_bn(cin, exp, 1, act=act, eps=eps)]
        layers.append(_conv_bn(exp, exp, k, stride, groups=exp, act=act, eps=eps))
        if se:
            layers.append(SqueezeExcitation(exp, max(exp // 4, 4)))
        layers.append(_conv_bn(exp, cout, 1, act=None, eps=eps))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    def __init__(self):
        super().__init__()
        hs, re = nn.Hardswish, nn.ReLU
        self.stem = _conv_bn(3, 8, 3, 2, act=hs, eps=1e-3)                    # 16x16
        self.block1 = InvertedResidual(8, 8, 8, 3, 2, se=True, act=re)       # 8x8
        self.block2 = InvertedResidual(8, 24, 8, 3, 1, se=False, act=re)     # residual
        self.block3 = InvertedResidual(8, 24, 16, 5, 2, se=True, act=hs)     # 4x4
        self.block4 = InvertedResidual(16, 48, 16, 5, 1, se=True, act=hs)    # residual
        self.last = _conv_bn(16, 48, 1, act=hs, eps=1e-3)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(48, 64), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(64, CLASSES))

    def forward(self, x):
        for name in ("stem", "block1", "block2", "block3", "block4", "last", "avgpool"):
            x = getattr(self, name)(x)
        return self.classifier(torch.flatten(x, 1))


# SqueezeNet --------------------------------------------------------------------------------
class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 in small: overlapping 3x3/s2 max pools with ceil_mode=True (16 -> 8 and
    8 -> 4, where floor mode would give 7 and 3), fire modules, and the convolutional classifier
    (Dropout, 1x1 conv to the classes, ReLU, global average pool) before flattening."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU())    # 16x16
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)                   # 8x8
        self.fire1 = Fire(16, 4, 8)
        self.fire2 = Fire(16, 4, 8)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)                   # 4x4
        self.fire3 = Fire(16, 8, 16)
        self.fire4 = Fire(32, 8, 16)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(32, CLASSES, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        for name in ("stem", "pool1", "fire1", "fire2", "pool2", "fire3", "fire4", "classifier"):
            x = getattr(self, name)(x)
        return torch.flatten(x, 1)


# ViT ---------------------------------------------------------------------------------------
class Tokens(nn.Module):
    """Patch features (N, D, 4, 4) -> 16 tokens, a learned class token in front, plus a learned
    position embedding: (N, 17, D)."""

    def __init__(self, dim, n):
        super().__init__()
        self.class_token = nn.Parameter(0.5 * torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(0.5 * torch.randn(1, n + 1, dim))

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embedding


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class TransformerBlock(nn.Module):
    """Pre-norm: x + attn(ln(x)), then x + mlp(ln(x)); the MLP's GELU is erf or tanh form."""

    def __init__(self, dim, heads, gelu):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(approximate=gelu),
                                 nn.Linear(2 * dim, dim))
        with torch.no_grad():  # pre-activations over GELU's curved range, where its forms differ
            self.mlp[0].weight.mul_(3.0)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, dim=32, heads=4, patch=8, size=32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)            # 32x32 -> 4x4 patches
        self.tokens = Tokens(dim, (size // patch) ** 2)
        self.block1 = TransformerBlock(dim, heads, "tanh")
        self.block2 = TransformerBlock(dim, heads, "none")      # exact (erf) GELU
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, x):
        x = self.norm(self.block2(self.block1(self.tokens(self.patch(x)))))
        return self.head(x[:, 0])


def vgg():
    return _seeded(VGG, 1)


def inception():
    return _seeded(Inception, 2)


def mobilenetv3():
    """Trained MobileNets drive hard-swish and hard-sigmoid into their flat ends (|x| > 3), but
    at init their inputs stay within +-3, where a rewrite that forgot the clip would pass. Larger
    gains before them put 2-50% of their inputs past +-3 (all but one of the ten)."""
    net = _seeded(MobileNetV3, 3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Sequential) and isinstance(m[1], nn.Hardswish):
                m[0].weight.mul_(4.0)                      # the classifier's first Linear
            elif isinstance(m, nn.Sequential) and isinstance(m[-1], nn.Hardswish):
                m[1].weight.mul_(4.0)                      # BatchNorm scale before hard-swish
            elif isinstance(m, SqueezeExcitation):
                m.fc2.weight.mul_(10.0)
                m.fc2.bias.mul_(10.0)
    return net


def squeezenet():
    return _seeded(SqueezeNet, 4)


def vit():
    return _seeded(ViT, 5)


# name -> (factory, input size)
FAMILIES = {
    "vgg": (vgg, 40),
    "inception": (inception, 32),
    "mobilenetv3": (mobilenetv3, 32),
    "squeezenet": (squeezenet, 32),
    "vit": (vit, 32),
}

# The layer table each family's default export should hold (top-level modules whose output is
# a 4-D feature map or, for the ViT, a 3-D token tensor).
LAYERS = {
    "vgg": ["stage1", "stage2", "stage3", "stage4", "stage5"],
    "inception": ["stem", "block1", "pool", "block2", "avgpool"],
    "mobilenetv3": ["stem", "block1", "block2", "block3", "block4", "last", "avgpool"],
    "squeezenet": ["stem", "pool1", "fire1", "fire2", "pool2", "fire3", "fire4", "classifier"],
    "vit": ["patch", "tokens", "block1", "block2", "norm"],
}
