"""The benchmark's photo: the bundled sample, center-cropped to a square (numpy + Pillow)."""

from __future__ import annotations

import common
import numpy as np
from PIL import Image

from ortviz.bundle.embedded import sample
from ortviz.run import imagefiles


def square_photo(size: int = common.SIZE) -> np.ndarray:
    """HxWx3 uint8, size x size, so every technique runs its graph at the model's size."""
    rgb = imagefiles.load_image(sample(common.PHOTO))
    h, w = rgb.shape[:2]
    k = min(h, w)
    crop = rgb[(h - k) // 2:(h - k) // 2 + k, (w - k) // 2:(w - k) // 2 + k]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BICUBIC))
