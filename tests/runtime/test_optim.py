"""Adam works in place on its moments; it must give the bits the textbook formula gives.

The reference is the formula written out with fresh arrays (Kingma & Ba 2015, Algorithm 1, the
bias corrections applied to the moments), in the same order of operations, so the comparison
is exact: any reordering or dtype slip would change bits within a few steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from ortviz.render.optim import Adam


def _reference(gs, lr=0.05, b1=0.9, b2=0.999, eps=1e-8, m=None, v=None):
    out = []
    for t, g in enumerate(gs, start=1):
        m = np.zeros_like(g) if m is None else m
        v = np.zeros_like(g) if v is None else v
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append((lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)).astype(g.dtype))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_gives_the_formula_bit_for_bit(dtype):
    seed = 3
    rng = np.random.default_rng(seed)
    gs = [(rng.standard_normal((1, 3, 8, 5, 2)) * 10.0 ** rng.integers(-4, 3)).astype(dtype)
          for _ in range(25)]
    opt = Adam(0.05)
    got = [opt.step(g) for g in gs]
    for k, (a, b) in enumerate(zip(got, _reference(gs))):
        assert a.dtype == dtype
        assert np.array_equal(a, b), f"step {k + 1} differs (seed {seed}, {dtype.__name__})"


def test_adam_copies_moments_it_may_not_write_and_widens_to_the_gradient():
    seed = 4
    rng = np.random.default_rng(seed)
    m0 = rng.standard_normal((2, 6)).astype(np.float32)
    v0 = np.abs(rng.standard_normal((2, 6))).astype(np.float32)
    m_in, v_in = m0.copy(), v0.copy()
    m_in.setflags(write=False)                      # as a session's output may come
    opt = Adam(0.05)
    opt.m, opt.v, opt.t = m_in, v_in[:, ::1], 0
    gs = [rng.standard_normal((2, 6)) for _ in range(3)]   # float64 gradients, float32 moments
    got = [opt.step(g) for g in gs]
    want = _reference(gs, m=m0.astype(np.float64), v=v0.astype(np.float64))  # widened first
    for k, (a, b) in enumerate(zip(got, want)):
        assert np.array_equal(a, b), f"step {k + 1} differs (seed {seed})"
    assert np.array_equal(m_in, m0) and np.array_equal(v_in, v0), "a moment handed in was written"
    assert opt.m.dtype == np.float64
