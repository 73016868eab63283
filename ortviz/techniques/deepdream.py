"""DeepDream (Mordvintsev et al. 2015)."""

from ..objectives import FEATURE_ENERGY
from ..technique import Need, Technique

technique = Technique(
    name="deepdream",
    summary="From a photo, amplify what a layer sees (jitter, octaves).",
    needs=(Need(FEATURE_ENERGY, on="layers"),),
)
