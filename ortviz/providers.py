"""Execution providers: short names, what is available, and ``auto``."""

from __future__ import annotations

import onnxruntime as ort

NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
}
# Options a provider gets by default: gradients need full float32 (OpenVINO may otherwise run in
# bf16 on CPUs that have it).
OPTIONS = {"openvino": {"precision": "FP32"}}
# ``auto`` takes the first available of these; TensorRT is never picked implicitly (its engine
# build takes minutes per graph).
AUTO_ORDER = ["cuda", "rocm", "migraphx", "directml", "coreml", "openvino", "cpu"]


class ProviderError(ValueError):
    pass


def available() -> list[str]:
    have = set(ort.get_available_providers())
    return [short for short, full in NAMES.items() if full in have]


def resolve(choice: str) -> tuple[str, list]:
    """(short name, the providers list for a session: names, or (name, options) pairs); CPU
    always last as the fallback."""
    have = available()
    choice = choice.lower().strip()
    if choice == "auto":
        short = next(s for s in AUTO_ORDER if s in have or s == "cpu")
    elif choice in NAMES or choice.endswith("executionprovider"):
        short = next((s for s, f in NAMES.items() if choice in (s, f.lower())), choice)
        if short not in have:
            raise ProviderError(f"execution provider {choice!r} is not available in this "
                                f"onnxruntime build; available: {', '.join(have)}")
    else:
        raise ProviderError(f"unknown execution provider {choice!r}; choose auto or one of: "
                            f"{', '.join(NAMES)} (available here: {', '.join(have)})")
    first = (NAMES[short], OPTIONS[short]) if short in OPTIONS else NAMES[short]
    chain = [first] + ([NAMES["cpu"]] if short != "cpu" else [])
    return short, chain
