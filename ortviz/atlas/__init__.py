"""The atlas: a browsable static site of a model's channels, classes and photos.

``ortviz atlas -o DIR`` plans work units (:mod:`.plan`), keys them for resume (:mod:`.keys`),
renders them through the public Python API (:mod:`.work`) on an executor (:mod:`.executors`:
this process, local worker processes, or Ray), ranks photos per channel (:mod:`.examples`) and
writes the site (:mod:`.site`, :mod:`.pages`, :mod:`.assets`); :mod:`.build` runs it all.
"""

from ortviz.atlas.build import Options, Report, build
from ortviz.atlas.plan import Spec

__all__ = ["Options", "Report", "Spec", "build"]
