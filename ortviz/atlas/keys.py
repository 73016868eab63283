"""Keys and resume: a unit is redone only when what would make its picture has changed.

A unit's key is the sha256 of: the bundle's manifest sha256 (which names every graph and weight
file by its own sha256), the unit's kind, technique and full parameters, its objective or target,
its layer, the sha256 of its photo, its seed and the ortviz version. The key is written into the
picture's sidecar (``"atlas": {"key": ...}``). A unit is done when its image and its sidecar both
exist, the sidecar says ``complete`` (or ``blank: ...``, a dead unit's finished picture) and
carries the same key; the sidecar is written last and
each file is renamed into place whole, so a crash leaves either the old set or the new one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ortviz import __version__
from ortviz.atlas.plan import Unit
from ortviz.bundle.reader import sha256
from ortviz.run.outcome import finished


def unit_key(unit: Unit, manifest_sha256: str, photo_sha256: str | None = None) -> str:
    payload = {"manifest_sha256": manifest_sha256, "kind": unit.kind,
               "technique": unit.technique, "params": unit.params, "objective": unit.objective,
               "index": unit.index, "layer": unit.layer, "photo_sha256": photo_sha256,
               "seed": unit.seed, "ortviz": __version__}
    if unit.variant is not None:  # only then: the keys of atlases made before stay as they were
        payload["variant"] = unit.variant
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def assign_keys(units: list[Unit], manifest_sha256: str, photos: dict[str, Path]) -> None:
    """Fill in every unit's key (photos: file name -> path, hashed once each)."""
    sums = {name: sha256(p) for name, p in photos.items()}
    for u in units:
        u.key = unit_key(u, manifest_sha256, sums.get(u.photo) if u.photo else None)


def sidecar_path(image: Path) -> Path:
    return image.with_suffix(image.suffix + ".json")


def read_sidecar(image: Path) -> dict | None:
    try:
        meta = json.loads(sidecar_path(image).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_done(unit: Unit, site: Path) -> bool:
    image = site / unit.path
    if not image.is_file():
        return False
    meta = read_sidecar(image)
    return (meta is not None and finished(str(meta.get("status")))
            and (meta.get("atlas") or {}).get("key") == unit.key)
