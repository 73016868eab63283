"""The render loop: parameterization -> transforms -> objective -> optimizer, and what it runs in.

- :mod:`~ortviz.render.context.loop`: ``optimize``, the one loop every technique runs;
- :mod:`~ortviz.render.context.context`: the context a technique's loop sees, and the result it leaves;
- :mod:`~ortviz.render.context.param`: parameterizations (pixels, Fourier, MACO), each ``(params, image function)``;
- :mod:`~ortviz.render.context.transforms` and :mod:`~ortviz.render.context.warp`: random transforms, their exact adjoints;
- :mod:`~ortviz.render.context.optim`: step rules;
- :mod:`~ortviz.render.context.modelspace`: model-space conversions and the image operations techniques share;
- :mod:`~ortviz.render.context.stepgraph`: the numpy side of a step as ONNX graphs;
- :mod:`~ortviz.render.context.transparency`, :mod:`~ortviz.render.context.metrics`: MACO's transparency map, picture similarity.
"""

from ortviz._compat import packaged_getattr as _packaged

__getattr__ = _packaged("ortviz.render")  # 0.1's ortviz.render.X, for one minor version
