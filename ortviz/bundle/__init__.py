"""The bundle: a directory holding a classifier and its portable gradient graphs.

- :mod:`~ortviz.bundle.reader.reader`: open and check a bundle (:class:`~ortviz.bundle.reader.reader.Bundle`);
- :mod:`~ortviz.bundle.reader.manifest`: the manifest's fields, checked before use;
- :mod:`~ortviz.bundle.reader.graphs`: the graph objectives the exporter writes and their names;
- :mod:`~ortviz.bundle.reader.labels`: class labels, found by index or name;
- :mod:`~ortviz.bundle.reader.embedded`: where the embedded default model and sample photos live.
"""

from ortviz._compat import packaged_getattr as _packaged

__getattr__ = _packaged("ortviz.bundle")  # 0.1's ortviz.bundle.X, for one minor version
