"""A render step's numpy side (parameterization, transforms' warp, their adjoints, Adam) as small
standard-ONNX graphs built at run time, and the loop that runs them (docs/step-graphs.md).

- :mod:`.graphs`: the pieces (inverse real FFT in matrix form, colour, warp, adjoints, Adam);
- :mod:`.models`: whole models for one recipe (``param``, ``pre``, ``post``, and the pieces);
- :mod:`.plans`: the per-step inputs of the warp graphs, from a drawn transform chain;
- :mod:`.stepper`: one step on the runtime (``pre`` -> gradient graph -> ``post``), state kept;
- :mod:`.fused`: the three merged into one graph where the objective allows;
- :mod:`.loop`: :func:`optimize`, the render loop with the step on the runtime.
"""

from ortviz.render.stepgraph.graphs import dft_matrices, planar, unplanar
from ortviz.render.stepgraph.loop import optimize, supports
from ortviz.render.stepgraph.models import Recipe
from ortviz.render.stepgraph.plans import feeds, transposed_taps
from ortviz.render.stepgraph.stepper import Stepper

__all__ = ["Recipe", "Stepper", "dft_matrices", "feeds", "optimize", "planar", "supports", "transposed_taps",
           "unplanar"]
