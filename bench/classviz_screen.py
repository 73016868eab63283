"""Screen class-visualization recipes that the CLI's options cannot express (issue 21).

``bench/recognition.py`` judges any combination of class-viz options; a recipe tried on the way
to the natural default that is not one (a Fourier spectrum with another falloff, a wider scale
jitter) is named here, built by replacing the technique's parameterization or transform list,
and judged the same way (the two judges, the naturalness statistics), into the same results
format, so ``recognition.py --table`` and ``scripts/docs_tables.py`` show its row:

    PYTHONPATH=JUDGES:. .venv-export/bin/python bench/classviz_screen.py --recipe natural-decay2 \
        --random 6 --draw-seed 12 --seeds 0 --out bench/results/recognition-screen-issue21.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ortviz  # noqa: F401  (first: it limits numpy's BLAS to one thread before numpy loads)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recognition as rec  # noqa: E402

from ortviz.render import param as P, transforms as tf  # noqa: E402
from ortviz.techniques import class_visualization as cv, recipes  # noqa: E402

# 0.8 .. 1.2: the ``wide`` preset's scales (the preset came out of this screen)
WIDE_SCALES = next(t.scales for t in tf.preset("wide") if isinstance(t, tf.RandomScale))

# name: (what it is, the Natural decay or None for the option's param, scales or None, options)
RECIPES = {
    "natural-decay2": ("natural's scale with a 1/f^2 falloff", 2.0, None, ()),
    "natural-wide-scale": ("natural, scale jitter 0.8-1.2 instead of 0.9-1.1", 1.5, WIDE_SCALES, ()),
    # coarse to fine, as feature inversion's spectra (the CLI refuses --octaves for the spectra
    # in class-viz): 2 octaves (ratio 1.6) of 256 iterations, about the default's gradient work
    "natural-octaves2": ("natural, coarse to fine over 2 octaves x 256 iterations", None, None,
                         ("octaves=2", "iterations=256")),
}
# natural-wide-scale is ``--transforms wide`` (the same transform list, the same draws, bit for
# bit). --model and --judges judge a recipe on another bundle, as recognition.py's.


def install(decay, scales, options=()) -> None:
    """Make class-viz's spectral parameterization a Natural of ``decay`` and its transforms'
    random scale draw from ``scales`` (None: unchanged); with ``octaves`` among ``options``,
    let the spectra run coarse to fine."""
    parameterization, transform_list = recipes.parameterization, recipes.transform_list
    if any(o.startswith("octaves=") for o in options):
        cv.choices.check_octaves = lambda name, octaves: None   # this process screens only

    def natural(ctx, name, hw, d=1.0, start=None):
        if decay is None:
            return parameterization(ctx, name, hw, d, start)
        return P.Colour(P.Natural((ctx.batch, 3, *hw), decay=decay), ctx.low, ctx.high)

    def wider(ctx, name, jitter=12, zoom=0.0, canvas=None):
        ts = transform_list(ctx, name, jitter, zoom, canvas)
        return ts if scales is None else \
            [tf.RandomScale(scales) if isinstance(t, tf.RandomScale) else t for t in ts]
    cv.recipes.parameterization, cv.recipes.transform_list = natural, wider   # this process screens only


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    ap.add_argument("--random", type=int, required=True, metavar="N")
    ap.add_argument("--draw-seed", type=int, required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--naturalness", type=Path, default=rec.NATURALNESS)
    ap.add_argument("--model", default=None, help="a bundle (default: the embedded model)")
    ap.add_argument("--judges", default=None, help="as recognition.py's --judges")
    args = ap.parse_args(argv)
    what, decay, scales, options = RECIPES[args.recipe]
    install(decay, scales, options)
    return rec.main(["--random", str(args.random), "--draw-seed", str(args.draw_seed),
                     "--seeds", args.seeds, "--threads", str(args.threads), "--out", str(args.out),
                     "--naturalness", str(args.naturalness), "--set", "param=natural",
                     *[a for o in options for a in ("--set", o)],
                     "--name", f"screen: {args.recipe} ({what})"]
                    + (["--images", str(args.images)] if args.images else [])
                    + (["--model", args.model] if args.model else [])
                    + (["--judges", args.judges] if args.judges else []))


if __name__ == "__main__":
    sys.exit(main())
