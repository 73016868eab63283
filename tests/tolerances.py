"""The tolerances every gradient check states, and the error they bound (numpy only: every
stage imports it)."""

import numpy as np

# float32 graph against float64 torch: |g - g_ref|max <= TOL * |g_ref|max
TOL_TORCH = 1e-4
# lowered against the unlowered training-build graph, both float32
TOL_RAW = 1e-5
# <g, v> against a central difference of the float64 torch loss
TOL_FD = 1e-3


def rel_err(a, b) -> float:
    """max |a - b| over max |b| (0 when both are all zero, inf when only b is)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not b.size:
        return 0.0
    diff, scale = float(np.abs(a - b).max()), float(np.abs(b).max())
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
