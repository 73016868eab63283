"""Dataset examples: for each channel, the photos that excite it most.

Each photo goes through the forward graph once (centre-cropped to the model's input size, as
the techniques see photos), with every chosen layer as an output; a channel's activation on a
photo is the mean of its feature map over positions. For each channel the photos are ranked by
that mean, highest first, and the top ``k`` kept with their values.
"""

from __future__ import annotations

import numpy as np

from ortviz.render import modelspace


def centre_crop(rgb: np.ndarray, size_hw) -> np.ndarray:
    """The largest centred crop of an HxWx3 image with the aspect ratio of ``size_hw``."""
    h, w = rgb.shape[:2]
    th, tw = int(size_hw[0]), int(size_hw[1])
    if h * tw > w * th:  # too tall
        k = max(1, round(w * th / tw))
        return np.ascontiguousarray(rgb[(h - k) // 2:(h - k) // 2 + k])
    k = max(1, round(h * tw / th))
    return np.ascontiguousarray(rgb[:, (w - k) // 2:(w - k) // 2 + k])


def photo_input(model, rgb: np.ndarray) -> np.ndarray:
    """A photo as the model's input (1, 3, H, W): centre-cropped, resized, normalized."""
    pre = model.bundle.manifest["preprocessing"]
    size = tuple(model.engine.image_shape[2:])
    return modelspace.to_model(centre_crop(rgb, size), pre["mean"], pre["std"], size=size)


def layer_means(model, photos: dict[str, np.ndarray], layers: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """{layer: {photo name: per-channel mean activation (C,)}}."""
    engine, bundle = model.engine, model.bundle
    tensors = {l["name"]: l["tensor"] for l in bundle.layers}
    wanted = [tensors[n] for n in layers]
    batch = engine.image_shape[0]
    out: dict[str, dict[str, np.ndarray]] = {n: {} for n in layers}
    if not wanted:
        return out
    for name, rgb in photos.items():
        x = photo_input(model, rgb)
        if batch > 1:
            x = np.repeat(x, batch, axis=0)
        values = engine.forward(x.astype(np.float32), wanted)
        for layer, tensor in zip(layers, wanted):
            fmap = np.asarray(values[tensor][0], dtype=np.float64)
            out[layer][name] = fmap.reshape(fmap.shape[0], -1).mean(axis=1)
    return out


def top_photos(means: dict[str, np.ndarray], channel: int, k: int) -> list[dict]:
    """The ``k`` photos with the highest mean activation of ``channel``, highest first (ties:
    by name, so the order is stable)."""
    ranked = sorted(means.items(), key=lambda kv: (-float(kv[1][channel]), kv[0]))
    return [{"photo": name, "mean_activation": round(float(v[channel]), 6)}
            for name, v in ranked[:k]]
