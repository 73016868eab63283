"""Where the embedded default model and sample photos live.

They ship in the repository's ``models/`` directory, installed as the package ``ortviz_models``
(the wheel carries it; an editable install maps it to ``models/``), so an installed ortviz finds
them in any directory. ``ORTVIZ_MODELS`` points elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ortviz.errors import BundleError

DEFAULT_BUNDLE = "efficientnet-lite0"


def models_dir() -> Path:
    env = os.environ.get("ORTVIZ_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("ortviz_models")
    if spec is None or not spec.submodule_search_locations:
        raise BundleError("the embedded default model is not installed (package ortviz_models "
                          "missing); reinstall ortviz or pass --model BUNDLE")
    return Path(list(spec.submodule_search_locations)[0])


def default_bundle() -> Path:
    return models_dir() / DEFAULT_BUNDLE


def sample(name: str = "chelsea.png") -> Path:
    return models_dir() / "samples" / name


def imagenet_labels_file() -> Path:
    return models_dir() / "imagenet_labels.tsv"
