"""Class visualization (Simonyan et al. 2014, regularizers of Yosinski et al. 2015)."""

from ..objectives import CLASS_LOG_SOFTMAX, CLASS_SCORE
from ..technique import Need, Technique

technique = Technique(
    name="class-visualization",
    summary="From noise, climb a class's score (jitter, L2 decay, blur, clipping).",
    needs=(Need(CLASS_SCORE, on="logits"), Need(CLASS_LOG_SOFTMAX, on="logits")),
)
