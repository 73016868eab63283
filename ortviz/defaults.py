"""Where the embedded default model and sample photos live.

They ship in the repository's ``models/`` directory (the package is installed in editable
mode by the README's commands); ``ORTVIZ_MODELS`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BUNDLE = "efficientnet-lite0"


def models_dir() -> Path:
    env = os.environ.get("ORTVIZ_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def default_bundle() -> Path:
    return models_dir() / DEFAULT_BUNDLE


def sample(name: str = "chelsea.png") -> Path:
    return models_dir() / "samples" / name


def imagenet_labels_file() -> Path:
    return models_dir() / "imagenet_labels.tsv"
