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


def _term_value(term, phi, z, labels):
    """One term of an ortviz.objective.algebra objective, written again in torch (per image, summed)."""
    k, a = term.kind, term.args
    spatial = tuple(range(2, phi.dim())) if phi is not None and phi.dim() == 4 else (1,)
    if k in ("score", "log_prob"):
        from ortviz.bundle.labels import find_class
        c = find_class(labels, a[0])
        return (z if k == "score" else torch.log_softmax(z, -1))[:, c].sum()
    cax = 2 if phi.dim() == 3 else 1
    ch = (lambda n: phi[..., n]) if cax == 2 else (lambda n: phi[:, n])
    if k == "channel":
        return ch(a[0]).reshape(phi.shape[0], -1).mean(1).sum()
    if k == "neuron":
        n, y, x = a
        m = ch(n)
        if m.dim() == 3:
            return m[:, m.shape[1] // 2 if y is None else y, m.shape[2] // 2 if x is None else x].sum()
        return m[:, m.shape[1] // 2 if y is None else y].sum()
    if k == "direction":
        v = torch.tensor(a[0], dtype=torch.float64)
        shape = [1] * phi.dim()
        shape[cax] = -1
        return (phi * v.reshape(shape)).sum(cax).reshape(phi.shape[0], -1).mean(1).sum()
    if k == "energy":
        sel = phi if a[0] is None else ch(a[0])
        return (sel * sel).reshape(phi.shape[0], -1).mean(1).sum() / 2
    if k == "distance":
        t = torch.from_numpy(np.asarray(a[0].a)).double()
        return ((phi - t) ** 2).sum()
    raise KeyError(k)


def algebra_loss_fn(net, objective, labels, torch_terms=None):
    """x -> the objective's value in torch float64; ``torch_terms`` maps a numpy term's name to
    its torch version f(features dict) -> scalar."""
    net = net.double().eval()
    modules = dict(net.named_modules())
    layers = [l for l in objective.layers() if l != "logits"]

    def f(x):
        seen, hooks = {}, []
        for name in layers:
            hooks.append(modules[name].register_forward_hook(
                lambda m, i, o, name=name: seen.__setitem__(name, o)))
        try:
            z = net(x)
        finally:
            for h in hooks:
                h.remove()
        total = 0.0
        for w, term in objective.parts:
            if term.kind == "numpy":
                value = torch_terms[term.args[0]]({l: seen[l] for l in term.layers})
            else:
                value = _term_value(term, seen.get(term.layer), z, labels)
            total = total + w * value
        return total

    return f


def algebra_loss_and_grad(net, objective, labels, image, torch_terms=None):
    f = algebra_loss_fn(net, objective, labels, torch_terms)
    x = torch.from_numpy(image.astype(np.float64)).requires_grad_(True)
    loss = f(x)
    (g,) = torch.autograd.grad(loss, x)
    return float(loss.detach()), g.numpy()


def algebra_directional_fd(net, objective, labels, image, v, h=1e-4, torch_terms=None):
    f = algebra_loss_fn(net, objective, labels, torch_terms)
    x = torch.from_numpy(image.astype(np.float64))
    vt = torch.from_numpy(v.astype(np.float64))
    with torch.no_grad():
        return float((f(x + h * vt) - f(x - h * vt)) / (2 * h))
