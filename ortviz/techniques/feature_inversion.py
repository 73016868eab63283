"""Feature inversion (Mahendran & Vedaldi, CVPR 2015)."""

from ..objectives import FEATURE_DISTANCE
from ..technique import Need, Technique

technique = Technique(
    name="feature-inversion",
    summary="From noise, reconstruct a photo from its features at a layer.",
    needs=(Need(FEATURE_DISTANCE, on="layers"),),
)
