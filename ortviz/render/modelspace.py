"""Model-space conversions and the pure-numpy image operations the techniques share.

Inside the engine an image is a float32 NCHW array in the model's normalized space,
``x = (pixel - mean) / std`` per channel with pixels in 0..255 RGB. This module converts
RGB arrays to and from that space and provides the small differentiable pieces the loops
need (jitter, blur, clipping, regularizers with their gradients, bilinear resize and zoom with
their exact adjoints, tiling of large images over a fixed-size graph). Files are in
:mod:`ortviz.run.imagefiles`. Only numpy and Pillow.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

from ortviz.run.imagefiles import check_rgb


def _stats(mean, std) -> tuple[np.ndarray, np.ndarray]:
    m = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (3,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (3,))
    if not (s > 0).all():
        raise ValueError(f"std must be positive, got {s.tolist()}")
    return m.reshape(1, 3, 1, 1), s.reshape(1, 3, 1, 1)


def crop_to_aspect(rgb: np.ndarray, size_hw) -> np.ndarray:
    """The largest centred crop of an HxWx3 image with the aspect ratio of ``size_hw``."""
    h, w = rgb.shape[:2]
    th, tw = int(size_hw[0]), int(size_hw[1])
    if h * tw > w * th:  # too tall
        k = max(1, round(w * th / tw))
        top = (h - k) // 2
        return rgb[top:top + k]
    k = max(1, round(h * tw / th))
    left = (w - k) // 2
    return rgb[:, left:left + k]


FITS = ("crop", "pad", "whole")


def fit_photo(rgb: np.ndarray, size_hw, fit: str = "crop", fill: int = 127) -> np.ndarray:
    """An HxWx3 uint8 photo brought to ``size_hw`` (h, w), by ``fit``: ``crop`` the largest
    centred crop of that aspect ratio, resized (the sides of a wide photo are cut); ``pad`` the
    whole photo resized to fit inside, centred on a ``fill`` grey border (nothing cut, the
    aspect ratio kept); ``whole`` the whole photo resized to exactly that size (nothing cut, the
    aspect ratio changed). Pillow's antialiased bicubic filter, as :func:`to_model`."""
    a = check_rgb(rgb)
    th, tw = int(size_hw[0]), int(size_hw[1])
    if fit == "crop":
        a = np.ascontiguousarray(crop_to_aspect(a, (th, tw)))
    elif fit == "pad":
        h, w = a.shape[:2]
        k = min(th / h, tw / w)
        nh, nw = min(th, max(1, round(h * k))), min(tw, max(1, round(w * k)))
        inner = np.asarray(Image.fromarray(a).resize((nw, nh), Image.Resampling.BICUBIC))
        out = np.full((th, tw, 3), fill, np.uint8)
        top, left = (th - nh) // 2, (tw - nw) // 2
        out[top:top + nh, left:left + nw] = inner
        return out
    elif fit != "whole":
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    return np.asarray(Image.fromarray(a).resize((tw, th), Image.Resampling.BICUBIC))


def to_model(rgb_uint8_hwc: np.ndarray, mean, std, size=None, crop: bool = False) -> np.ndarray:
    """HxWx3 uint8 -> (1, 3, H, W) float32 normalized; ``size`` (int or (h, w)) resizes
    first with Pillow's antialiased bicubic filter, after a centred crop to its aspect ratio
    with ``crop`` (otherwise the photo is stretched)."""
    a = check_rgb(rgb_uint8_hwc)
    if size is not None:
        h, w = (size, size) if np.isscalar(size) else size
        if crop:
            a = np.ascontiguousarray(crop_to_aspect(a, (h, w)))
        a = np.asarray(Image.fromarray(a).resize((int(w), int(h)), Image.Resampling.BICUBIC))
    m, s = _stats(mean, std)
    x = a.astype(np.float32).transpose(2, 0, 1)[None]
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def from_model(x: np.ndarray, mean, std) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) normalized array -> HxWx3 uint8, rounded and clipped."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) array, got {x.shape}")
    m, s = _stats(mean, std)
    pix = x.astype(np.float32) * s[0] + m[0]
    return np.clip(np.rint(pix), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


def valid_range(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Normalized values of pixel 0 and pixel 255, each shaped (1, 3, 1, 1) float32."""
    m, s = _stats(mean, std)
    return ((0.0 - m) / s).astype(np.float32), ((255.0 - m) / s).astype(np.float32)


def grey(mean, std) -> np.ndarray:
    """The model-space value of the mean grey (pixel 127.5), per channel: a pad's fill."""
    return ((127.5 - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)).reshape(-1) * np.ones(3)


def clip(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Clip x into [low, high] with broadcasting (per-channel bounds from valid_range)."""
    return np.clip(x, low, high).astype(x.dtype, copy=False)


def jitter(x: np.ndarray, oy: int, ox: int) -> np.ndarray:
    """Circularly shift the last two axes by (oy, ox)."""
    return np.roll(x, (oy, ox), axis=(-2, -1))


def unjitter(x: np.ndarray, oy: int, ox: int) -> np.ndarray:
    """Undo :func:`jitter` with the same (oy, ox)."""
    return np.roll(x, (-oy, -ox), axis=(-2, -1))


def random_shift(rng: np.random.Generator, max_jitter: int) -> tuple[int, int]:
    """Two random ints (oy, ox), each uniform in [-max_jitter, max_jitter]."""
    if max_jitter < 0:
        raise ValueError("max_jitter must be >= 0")
    oy, ox = rng.integers(-max_jitter, max_jitter + 1, size=2)
    return int(oy), int(ox)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of the last two axes, radius ceil(3*sigma), reflect padding
    (edge sample not repeated, as numpy's and torch's 'reflect'). sigma <= 0: x as is."""
    if sigma <= 0:
        return x
    r = int(math.ceil(3 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
    out = x
    for axis in (-2, -1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect" if n > 1 else "edge")
        acc = np.zeros(out.shape, dtype=k.dtype)
        for i, ki in enumerate(k):  # sum of shifted slices = 1-D convolution
            acc += ki * (padded[..., i:i + n, :] if axis == -2 else padded[..., i:i + n])
        out = acc
    return out


def l2_grad(x: np.ndarray, weight: float) -> np.ndarray:
    """Gradient of ``weight * sum(x**2)``, i.e. ``2 * weight * x``."""
    return (2.0 * weight) * x


def tv_loss_and_grad(x: np.ndarray, beta: float = 2.0) -> tuple[float, np.ndarray]:
    """Total variation ``sum((dx^2 + dy^2) ** (beta/2))`` over the last two axes and its
    gradient. Forward differences; the last column's dx and last row's dy are zero. For
    beta < 2 a small epsilon (1e-8) is added inside the power so the gradient stays finite.
    """
    dx, dy = np.zeros_like(x), np.zeros_like(x)
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    s = dx * dx + dy * dy
    if beta < 2:
        s = s + 1e-8
    loss = float(np.sum(s ** (beta / 2)))
    f = beta * s ** (beta / 2 - 1)  # d loss / d s, times 2
    ax, ay = f * dx, f * dy
    g = -ax - ay
    g[..., :, 1:] += ax[..., :, :-1]
    g[..., 1:, :] += ay[..., :-1, :]
    return loss, g


def alpha_norm_loss_and_grad(x: np.ndarray, alpha: float = 6.0) -> tuple[float, np.ndarray]:
    """``sum(|x| ** alpha)`` and its gradient ``alpha * |x|**(alpha-1) * sign(x)``; alpha >= 1."""
    if alpha < 1:
        raise ValueError("alpha must be >= 1")
    ax = np.abs(x)
    return float(np.sum(ax ** alpha)), alpha * ax ** (alpha - 1) * np.sign(x)


def octave_sizes(size_hw: tuple[int, int], octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes for an octave pyramid, smallest first; the last is ``size_hw`` and each
    earlier one is ``round(next / scale)`` (at least 1 pixel)."""
    if scale <= 1:
        raise ValueError(f"octave scale must be > 1, got {scale}")
    if octaves < 1:
        raise ValueError(f"octaves must be >= 1, got {octaves}")
    sizes = [(int(size_hw[0]), int(size_hw[1]))]
    for _ in range(octaves - 1):
        h, w = sizes[-1]
        sizes.append((max(1, round(h / scale)), max(1, round(w / scale))))
    return sizes[::-1]


@lru_cache(maxsize=64)
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix of 1-D linear interpolation with half-pixel centers
    (align_corners=False, source index clamped to the border, no antialias)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - w1)
    np.add.at(m, (rows, i1), w1)
    m.setflags(write=False)
    return m


def _apply(x: np.ndarray, mh: np.ndarray, mw: np.ndarray) -> np.ndarray:
    """``mh @ x @ mw.T`` on the last two axes, as products BLAS runs fast (a stacked
    matmul with a transposed right operand is many times slower)."""
    mh = np.ascontiguousarray(mh, dtype=x.dtype)
    mw_t = np.ascontiguousarray(mw.T, dtype=x.dtype)
    y = np.matmul(mh, x)
    return (y.reshape(-1, y.shape[-1]) @ mw_t).reshape(y.shape[:-1] + (mw_t.shape[1],))


def resize(x: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of the last two axes of an NCHW float array to ``size_hw``."""
    h_in, w_in = x.shape[-2:]
    return _apply(x, _interp_matrix(h_in, int(size_hw[0])), _interp_matrix(w_in, int(size_hw[1])))


def resize_transpose(g: np.ndarray, size_hw_in: tuple[int, int]) -> np.ndarray:
    """Exact adjoint of :func:`resize` from ``size_hw_in``: maps a gradient on the resized
    image back to the input image."""
    h_out, w_out = g.shape[-2:]
    mh = _interp_matrix(int(size_hw_in[0]), h_out)
    mw = _interp_matrix(int(size_hw_in[1]), w_out)
    return _apply(g, mh.T, mw.T)


def _fit(x: np.ndarray, size_hw) -> np.ndarray:
    """Center-crop or zero-pad the last two axes to ``size_hw``; with the same centering,
    fitting back is this map's exact adjoint."""
    out = np.zeros(x.shape[:-2] + (int(size_hw[0]), int(size_hw[1])), dtype=x.dtype)
    src, dst = [], []
    for n, m in zip(x.shape[-2:], out.shape[-2:]):
        k = min(n, m)
        src.append(slice((n - k) // 2, (n - k) // 2 + k))
        dst.append(slice((m - k) // 2, (m - k) // 2 + k))
    out[..., dst[0], dst[1]] = x[..., src[0], src[1]]
    return out


def _zoomed(hw, factor: float) -> tuple[int, int]:
    return max(1, round(hw[0] * factor)), max(1, round(hw[1] * factor))


def zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Scale the content of an NCHW image about its center by ``factor``, keeping its size
    (cropped when enlarged, zero-padded — the model space's mean — when shrunk)."""
    return _fit(resize(x, _zoomed(x.shape[-2:], factor)), x.shape[-2:])


def zoom_transpose(g: np.ndarray, factor: float) -> np.ndarray:
    """Exact adjoint of :func:`zoom` with the same factor: a gradient on the zoomed image
    mapped back to the image."""
    hw = g.shape[-2:]
    return resize_transpose(_fit(g, _zoomed(hw, factor)), hw)


def _starts(n: int, t: int) -> list[int]:
    if n < t:
        raise ValueError(f"image size {n} is smaller than the tile size {t}")
    return list(range(0, n - t, t)) + [n - t]


def tile_origins(size_hw, tile_hw, rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
    """(top, left) corners of tiles of ``tile_hw`` covering an image of ``size_hw``: a grid
    whose last row and column are aligned to the border (so tiles may overlap). With
    ``rng`` the order is shuffled. ValueError when the image is smaller than a tile."""
    rows, cols = _starts(size_hw[0], tile_hw[0]), _starts(size_hw[1], tile_hw[1])
    origins = [(top, left) for top in rows for left in cols]
    if rng is not None:
        origins = [origins[i] for i in rng.permutation(len(origins))]
    return origins


def tiled_gradient(x: np.ndarray, tile_hw, grad_fn: Callable[[np.ndarray], np.ndarray],
                   rng: np.random.Generator) -> np.ndarray:
    """Gradient of a full NCHW image computed tile by tile on a fixed-size graph.

    The image is first rolled by a random (oy, ox) in [0, tile) so seams move between
    calls; ``grad_fn(tile)`` must return an array of the tile's shape. Overlapping
    contributions are averaged, and the result is rolled back to the image's frame.
    """
    th, tw = int(tile_hw[0]), int(tile_hw[1])
    oy, ox = int(rng.integers(0, th)), int(rng.integers(0, tw))
    xs = jitter(x, oy, ox)
    h, w = x.shape[-2:]
    out = np.zeros_like(xs)
    count = np.zeros((h, w), dtype=xs.dtype)
    for top, left in tile_origins((h, w), (th, tw), rng):
        tile = np.ascontiguousarray(xs[..., top:top + th, left:left + tw])
        g = np.asarray(grad_fn(tile))
        if g.shape != tile.shape:
            raise ValueError(f"grad_fn returned shape {g.shape} for a tile of shape {tile.shape}")
        out[..., top:top + th, left:left + tw] += g
        count[top:top + th, left:left + tw] += 1
    return unjitter(out / count, oy, ox)
