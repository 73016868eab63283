"""Image files, model-space conversions and pure-numpy image operations.

Inside the engine an image is a float32 NCHW array in the model's normalized space,
``x = (pixel - mean) / std`` per channel with pixels in 0..255 RGB. This module turns
files into such arrays and back, and provides the small differentiable pieces the
optimizers need (blur, regularizers with their gradients, bilinear resize with its exact
adjoint, and tiling of large images over a fixed-size graph). Only numpy and Pillow.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import first_line


class ImageError(ValueError):
    """A bad image input or output request; the message is one user-facing line."""


def load_image(path, max_pixels: int = 50_000_000) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array.

    Grayscale, palette and bilevel images become RGB; alpha is composited over white;
    CMYK is converted; 16-bit and 32-bit integer gray is scaled from 0..65535 to 0..255;
    float gray is accepted only when it lies in 0..1. EXIF orientation is applied.
    Refused with :class:`ImageError`: missing files, directories, empty or non-image
    files, truncated or corrupt data, animated (multi-frame) images, and images whose
    header claims more than ``max_pixels`` pixels (checked before decoding). Pillow's
    own hard limit (twice ``Image.MAX_IMAGE_PIXELS``) also still applies.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image file")
    if p.stat().st_size == 0:
        raise ImageError(f"{p}: file is empty")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; keep Pillow's warning off the console.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(f"{p}: {w}x{h} = {w * h} pixels is over the pixel limit "
                                     f"of {max_pixels} (possible decompression bomb)")
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    raise ImageError(f"{p}: animated or multi-frame image ({frames} frames) "
                                     "is not supported; save one frame as PNG")
                img.load()  # full decode: surfaces truncated or corrupt data now
                with contextlib.suppress(Exception):  # broken EXIF: keep the picture as is
                    img = ImageOps.exif_transpose(img)
                return _to_rgb(img, p)
    except (ImageError, MemoryError):
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{p}: over the pixel limit (possible decompression bomb): "
                         f"{first_line(e)}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file Pillow can read") from None
    except Exception as e:  # OSError (truncated), SyntaxError, EOFError, zlib errors...
        raise ImageError(f"{p}: cannot decode image (truncated or corrupt?): "
                         f"{first_line(e)}") from None


def _to_rgb(img: Image.Image, p: Path) -> np.ndarray:
    """Convert a decoded Pillow image of any supported mode to HxWx3 uint8 RGB."""
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):  # 16/32-bit integer or float gray
        a = np.asarray(img).astype(np.float64)
        top = 1.0 if mode == "F" else 65535.0
        if a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= top):
            raise ImageError(f"{p}: {mode!r} image with values outside 0..{top:g} "
                             "is not supported")
        gray = np.rint(a * (255.0 / top)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if "A" in mode or mode.endswith("a"):  # RGBA, LA, PA, RGBa, La
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[..., 3:4]
        out = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
        return out.astype(np.uint8)
    try:
        return np.array(img.convert("RGB"), dtype=np.uint8)
    except Exception:
        raise ImageError(f"{p}: unsupported image mode {mode!r}") from None


def _check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"{what} must be an HxWx3 uint8 array, got {a.dtype} {a.shape}")
    return a


def _atomic_write(path: Path, write: Callable) -> None:
    """Call ``write(file_object)`` on a temp file next to ``path``, then rename it over."""
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                      suffix=path.suffix, delete=False)
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        # the temp file is created 0600: keep the old file's mode, else use 0644
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise


def save_image(path, rgb_uint8_hwc: np.ndarray) -> None:
    """Write an HxWx3 uint8 image atomically; the format follows the file extension."""
    p = Path(path)
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"{p}: unknown or unwritable image extension {p.suffix!r}")
    img = Image.fromarray(_check_rgb(rgb_uint8_hwc))
    options = {"quality": 95} if fmt == "JPEG" else {}
    _atomic_write(p, lambda f: img.save(f, format=fmt, **options))


def save_gif(path, frames: Sequence[np.ndarray], duration_ms: int = 80) -> None:
    """Write frames (HxWx3 uint8, same size) atomically as a GIF that loops forever."""
    p = Path(path)
    if p.suffix.lower() != ".gif":
        raise ImageError(f"{p}: an animation must be saved with the .gif extension")
    if len(frames) == 0:
        raise ImageError("save_gif needs at least one frame")
    arrays = [_check_rgb(f, "frame") for f in frames]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ImageError("all GIF frames must have the same size")
    images = [Image.fromarray(a) for a in arrays]
    _atomic_write(p, lambda f: images[0].save(
        f, format="GIF", save_all=True, append_images=images[1:],
        duration=int(duration_ms), loop=0))


def contact_sheet(frames: Sequence[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Tile HxWx3 uint8 frames row by row in a grid with 2-pixel white gutters.

    ``columns`` defaults to ceil(sqrt(n)); cells take the largest frame size and smaller
    frames sit at their cell's top left on white.
    """
    arrays = [_check_rgb(f, "frame") for f in frames]
    if not arrays:
        raise ImageError("contact_sheet needs at least one frame")
    n, gut = len(arrays), 2
    cols = min(n, columns if columns is not None else math.ceil(math.sqrt(n)))
    if cols < 1:
        raise ValueError("columns must be at least 1")
    rows = math.ceil(n / cols)
    ch = max(a.shape[0] for a in arrays)
    cw = max(a.shape[1] for a in arrays)
    sheet = np.full((rows * ch + (rows - 1) * gut, cols * cw + (cols - 1) * gut, 3), 255, np.uint8)
    for i, a in enumerate(arrays):
        top, left = (i // cols) * (ch + gut), (i % cols) * (cw + gut)
        sheet[top:top + a.shape[0], left:left + a.shape[1]] = a
    return sheet


def _stats(mean, std) -> tuple[np.ndarray, np.ndarray]:
    m = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (3,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (3,))
    if not (s > 0).all():
        raise ValueError(f"std must be positive, got {s.tolist()}")
    return m.reshape(1, 3, 1, 1), s.reshape(1, 3, 1, 1)


def to_model(rgb_uint8_hwc: np.ndarray, mean, std, size=None) -> np.ndarray:
    """HxWx3 uint8 -> (1, 3, H, W) float32 normalized; ``size`` (int or (h, w)) resizes
    first with Pillow's antialiased bicubic filter."""
    a = _check_rgb(rgb_uint8_hwc)
    if size is not None:
        h, w = (size, size) if np.isscalar(size) else size
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
