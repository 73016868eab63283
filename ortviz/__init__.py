"""ortviz: see what an image classifier learned, on stock ONNX Runtime."""

import os as _os

# numpy's OpenBLAS threads fight onnxruntime's for the cores: the small matrix products of the
# loops (resizes) ran 25x slower multi-threaded on a 2-core machine. Takes effect when ortviz is
# imported before numpy (the CLI always is); set the variable yourself to override.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.2.0"

from ortviz import _compat as _c  # noqa: E402 (0.1's module names, for one minor version)

_c.install()


def load(bundle=None, provider: str = "auto", threads: int | None = None, step: str = "auto"):
    """Open a bundle (default: the embedded EfficientNet-Lite0); see :mod:`ortviz.api`."""
    from ortviz.api import load as _load  # onnxruntime loads here, not on import ortviz (the CLI)

    return _load(bundle, provider=provider, threads=threads, step=step)
