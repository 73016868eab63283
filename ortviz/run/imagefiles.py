"""Image files: reading any photo people have into RGB, and writing results atomically.

Reading converts what can be converted (grayscale, palette, alpha, CMYK, 16-bit, EXIF
orientation) and refuses, with one line naming the file, what cannot (missing, empty,
truncated, non-image, animated, larger than the pixel limit). Writing goes to a temporary name
in the same directory and is renamed into place (``atomic``), so no partial file is ever left.
FIFOs, devices, ``/proc`` files and link loops are named before anything opens them (``paths``).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from ortviz._util.atomic import atomic_write
from ortviz._util.paths import odd
from ortviz.errors import first_line


class ImageError(ValueError):
    """A bad image input or output request; the message is one user-facing line."""


MAX_PIXELS = 50_000_000   # pixels decoded, at most
JPEG_REDUCTION = 8        # draft() decodes a JPEG at 1/2, 1/4 or 1/8 of each side


def load_image(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array.

    Grayscale, palette and bilevel images become RGB; alpha is composited over white;
    CMYK is converted; 16-bit and 32-bit integer gray is scaled from 0..65535 to 0..255;
    float gray is accepted only when it lies in 0..1. EXIF orientation is applied.
    At most ``max_pixels`` pixels are decoded: a larger JPEG (a phone's 50-200 MP photo) is
    read reduced by Pillow's ``draft`` (1/2, 1/4 or 1/8 of each side, the least that fits), so
    JPEGs of up to 64 x ``max_pixels`` pixels (3.2 gigapixels by default) are read; any other
    format is decoded whole, so up to ``max_pixels``.
    Refused with :class:`ImageError`: missing files, directories, empty or non-image
    files, truncated or corrupt data, animated (multi-frame) images, and images past those
    bounds (checked on the header, before decoding; Pillow's own decompression-bomb limit
    gives way to this check while the header is read).
    """
    p = Path(path)
    why = odd(p, "an image file")  # a FIFO would block, a device read forever, a loop mislead
    if why:
        raise ImageError(why)
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p}: cannot read it: permission denied")
    if p.stat().st_size == 0:
        raise ImageError(f"{p}: file is empty")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; keep Pillow's warning off the console.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _header_only_limit():  # Pillow's check off for the header only
                img = Image.open(p)
            with img:
                _reduce_to_fit(img, p, max_pixels)
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


@contextlib.contextmanager
def _header_only_limit():
    """Pillow's decompression-bomb check off while a header is read: :func:`_reduce_to_fit`
    checks the size before anything is decoded, and lets large JPEGs through reduced."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _reduce_to_fit(img: Image.Image, p: Path, max_pixels: int) -> None:
    """Refuse an image that cannot be decoded within ``max_pixels``; set a large JPEG to decode
    at the least reduction (1/2, 1/4, 1/8 per side) that fits."""
    w, h = img.size
    if w * h <= max_pixels:
        return
    fits = [s for s in (2, 4, JPEG_REDUCTION) if -(-w // s) * -(-h // s) <= max_pixels]
    if img.format == "JPEG" and fits:
        s = fits[0]
        img.draft(None, (max(1, w // s), max(1, h // s)))
        if img.size[0] * img.size[1] <= max_pixels:
            return
    bound = (f"JPEGs are read reduced up to {JPEG_REDUCTION ** 2 * max_pixels / 1e6:g} "
             "megapixels; " if img.format == "JPEG" else "save it as a JPEG to have it read "
             "reduced; ")
    raise ImageError(f"{p}: {w}x{h} = {w * h} pixels is over the pixel limit of {max_pixels} "
                     f"decoded ({bound}possible decompression bomb)")


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


def check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"{what} must be an HxWx3 uint8 array, got {a.dtype} {a.shape}")
    return a


ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")   # formats that keep an alpha channel


def image_writer(path, rgb_uint8_hwc: np.ndarray, alpha: np.ndarray | None = None) -> Callable:
    """``write(file)`` for an HxWx3 uint8 image in the format of ``path``'s extension; with
    ``alpha`` (HxW uint8) an RGBA image, for the formats of :data:`ALPHA_SUFFIXES`."""
    p = Path(path)
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"{p}: unknown or unwritable image extension {p.suffix!r}")
    img = Image.fromarray(check_rgb(rgb_uint8_hwc))
    if alpha is not None:
        a = np.asarray(alpha)
        if p.suffix.lower() not in ALPHA_SUFFIXES:
            raise ImageError(f"{p}: {p.suffix} keeps no alpha channel; use "
                             f"{', '.join(ALPHA_SUFFIXES)}")
        if a.dtype != np.uint8 or a.shape != rgb_uint8_hwc.shape[:2]:
            raise ImageError(f"alpha must be an HxW uint8 array of the image's size, got {a.dtype} {a.shape}")
        img = Image.fromarray(np.ascontiguousarray(np.dstack([rgb_uint8_hwc, a])))
    options = {"quality": 95} if fmt == "JPEG" else {}
    return lambda f: img.save(f, format=fmt, **options)


def save_image(path, rgb_uint8_hwc: np.ndarray) -> None:
    """Write an HxWx3 uint8 image atomically; the format follows the file extension."""
    atomic_write(Path(path), image_writer(path, rgb_uint8_hwc))


def save_gif(path, frames: Sequence[np.ndarray], duration_ms: int = 80) -> None:
    """Write frames (HxWx3 uint8, same size) atomically as a GIF that loops forever."""
    atomic_write(Path(path), gif_writer(path, frames, duration_ms))


def gif_writer(path, frames: Sequence[np.ndarray], duration_ms: int = 80) -> Callable:
    """``write(file)`` for frames (HxWx3 uint8, same size) as a GIF that loops forever."""
    p = Path(path)
    if p.suffix.lower() != ".gif":
        raise ImageError(f"{p}: an animation must be saved with the .gif extension")
    if len(frames) == 0:
        raise ImageError("save_gif needs at least one frame")
    arrays = [check_rgb(f, "frame") for f in frames]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ImageError("all GIF frames must have the same size")
    images = [Image.fromarray(a) for a in arrays]
    return lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                    duration=int(duration_ms), loop=0)


def same_size(frames: Sequence[np.ndarray], shape) -> list[np.ndarray]:
    """Each HxWx3 frame at ``shape``'s height and width (bilinear; a frame already so, as is)."""
    h, w = int(shape[0]), int(shape[1])
    return [f if f.shape[:2] == (h, w) else
            np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR)) for f in frames]


LABEL_HEIGHT = 12  # the band under each cell of a labelled contact sheet


def contact_sheet(frames: Sequence[np.ndarray], columns: int | None = None,
                  labels: Sequence | None = None) -> np.ndarray:
    """Tile HxWx3 uint8 frames row by row in a grid with 2-pixel white gutters.

    ``columns`` defaults to ceil(sqrt(n)); cells take the largest frame size and smaller
    frames sit at their cell's top left on white. ``labels`` (one per frame: an iteration
    number, a word, or None) are written in a band under each cell: ``it 20``, ``final``.
    """
    arrays = [check_rgb(f, "frame") for f in frames]
    if not arrays:
        raise ImageError("contact_sheet needs at least one frame")
    n, gut = len(arrays), 2
    cols = min(n, columns if columns is not None else math.ceil(math.sqrt(n)))
    if cols < 1:
        raise ValueError("columns must be at least 1")
    rows = math.ceil(n / cols)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} frames")
    band = LABEL_HEIGHT if labels is not None else 0
    ch = max(a.shape[0] for a in arrays) + band
    cw = max(a.shape[1] for a in arrays)
    sheet = np.full((rows * ch + (rows - 1) * gut, cols * cw + (cols - 1) * gut, 3), 255, np.uint8)
    for i, a in enumerate(arrays):
        top, left = (i // cols) * (ch + gut), (i % cols) * (cw + gut)
        sheet[top:top + a.shape[0], left:left + a.shape[1]] = a
    if not band:
        return sheet
    picture = Image.fromarray(sheet)
    draw = ImageDraw.Draw(picture)
    for i, label in enumerate(labels):
        if label is None:
            continue
        text = f"it {label}" if isinstance(label, int) else str(label)
        top, left = (i // cols) * (ch + gut), (i % cols) * (cw + gut)
        draw.text((left + 2, top + arrays[i].shape[0]), text, fill=(0, 0, 0))  # under its frame
    return np.asarray(picture)
