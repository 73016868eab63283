"""A steeper spectrum with the same lowest-frequency gain as Lucid's 1/f (``--param natural``).

:class:`Fourier` scales each coefficient by ``1 / max(f, f0) ** decay`` with ``f0 = 1/max(H, W)``:
the gain at the lowest frequency is ``max(H, W) ** decay``. A larger decay than 1 then also makes
every low frequency larger, so Adam's equal steps push the sigmoid that follows into saturation
within a few dozen steps (measured at decay 1.5 on 224 px: 84 % of values at 0 or 255).

:class:`Natural` keeps decay 1's gain at the lowest frequency and lets the gain fall as
``f ** -decay`` above it:

    scale(f) = max(H, W) * (f0 / max(f, f0)) ** decay

so the coarse structure moves as fast as with ``fft`` and the fine detail ``(f / f0) ** (decay - 1)``
times slower. At decay 1.5 class visualizations' spectra fall off as photographs' do (median
slope -2.56 against fft's -1.54 on 40 pictures; photos -3.45 .. -2.05), the confetti of
high-frequency texture is gone and no value is pinned at 0 or 255 (docs/quality.md, issue 21).
At decay 1 it is :class:`Fourier` exactly.
"""

from __future__ import annotations

import numpy as np

from ortviz.render.param.fourier import Fourier, frequencies

DECAY = 1.5


class Natural(Fourier):
    """:class:`Fourier` with ``scale = max(H, W) * (f0 / max(f, f0)) ** decay``,
    ``f0 = 1 / max(H, W)``. Parameters, ``image``, ``image_vjp`` and ``from_image`` are
    :class:`Fourier`'s (they read ``scale``)."""

    def __init__(self, shape, decay: float = DECAY, init_std: float = 0.01):
        super().__init__(shape, decay=decay, init_std=init_std)
        h, w = self.shape[2:]
        f0 = 1.0 / max(h, w)
        self.scale = (max(h, w) * (f0 / np.maximum(frequencies(h, w), f0)) ** self.decay).astype(np.float32)
