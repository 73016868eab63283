"""Independent reference computations in torch float64 (export environment only).

Each objective is written again in torch, read from the network with a forward hook on the
module whose name is the layer's name, and differentiated by autograd.
"""

import numpy as np
import torch


def _objective(name, feature, feeds):
    def t(key):
        return torch.from_numpy(feeds[key]).double()

    if name == "features":
        return (feature * t("layer_weights")).sum() + 0.5 * (t("layer_curvature") * feature * feature).sum()
    if name == "logits":
        return (feature * t("class_weights")).sum() + (torch.log_softmax(feature, -1) * t("log_softmax_weights")).sum()
    if name == "class_score":
        return (feature * torch.from_numpy(feeds["class_weights"]).double()).sum()
    if name == "class_log_softmax":
        return (torch.log_softmax(feature, -1) * torch.from_numpy(feeds["class_weights"]).double()).sum()
    if name == "feature_distance":
        d = feature - torch.from_numpy(feeds["target_features"]).double()
        return (d * d).sum()
    if name == "feature_energy":
        return (feature * feature).mean() * feature.shape[0] / 2
    raise KeyError(name)


def loss_fn(net, objective, layer, feeds):
    """x (float64 tensor) -> scalar loss of ``objective`` at ``layer`` ("logits" or a module)."""
    net = net.double().eval()
    modules = dict(net.named_modules())

    def f(x):
        if layer == "logits":
            return _objective(objective, net(x), feeds)
        seen = {}
        h = modules[layer].register_forward_hook(lambda m, i, o: seen.__setitem__("o", o))
        try:
            net(x)
        finally:
            h.remove()
        return _objective(objective, seen["o"], feeds)

    return f


def loss_and_grad(net, objective, layer, image, feeds):
    f = loss_fn(net, objective, layer, feeds)
    x = torch.from_numpy(image.astype(np.float64)).requires_grad_(True)
    loss = f(x)
    (g,) = torch.autograd.grad(loss, x)
    return float(loss.detach()), g.numpy()


def directional_fd(net, objective, layer, image, feeds, v, h=1e-4):
    """Central finite difference of the loss along direction v, in float64."""
    f = loss_fn(net, objective, layer, feeds)
    x = torch.from_numpy(image.astype(np.float64))
    vt = torch.from_numpy(v.astype(np.float64))
    with torch.no_grad():
        return float((f(x + h * vt) - f(x - h * vt)) / (2 * h))
