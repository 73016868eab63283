"""How alike two pictures are: the structural similarity the quality tests and the inversion
benchmark report (numpy only)."""

from __future__ import annotations

import numpy as np

from ortviz.render import modelspace


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004) of two HxWx3 uint8 images: Gaussian windows (sigma 1.5,
    radius 5) on luma, the usual constants for a 0..255 range."""
    def luma(x):
        return (np.asarray(x).astype(np.float64) @ [0.299, 0.587, 0.114])[None, None]

    x, y = luma(a), luma(b)

    def blur(z):
        return modelspace.gaussian_blur(z, 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
