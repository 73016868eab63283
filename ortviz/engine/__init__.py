"""The engine: a bundle's graphs on stock ONNX Runtime.

- :mod:`~ortviz.engine.sessions.sessions`: one session per graph, the step's feeds and fetches (:class:`~ortviz.engine.sessions.sessions.Engine`);
- :mod:`~ortviz.engine.sessions.providers`: execution providers, their short names and what ``auto`` picks.
"""

# where the numpy side of a render step runs (docs/step-graphs.md); here, not in sessions, so that
# checking a run's options needs no onnxruntime
STEPS = ("auto", "numpy", "graph")

from ortviz._compat import packaged_getattr as _packaged

__getattr__ = _packaged("ortviz.engine")  # 0.1's ortviz.engine.X, for one minor version
