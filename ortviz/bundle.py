"""The bundle: a directory holding a classifier and its portable gradient graphs.

Layout (format version 1)::

    manifest.json          what is here (see README, "Bundle format")
    forward.onnx           classifier; outputs: logits, then every layer of the layer table
    weights.bin            the one external-data file every graph points into
    grad.<objective>__<layer>.onnx   lowered gradient graphs: outputs ``loss`` and the input gradient

Reading a bundle checks its format version, that every file named in the manifest is present,
inside the directory and unchanged (sha256), and that nothing unexpected lies beside them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

FORMAT = "ortviz-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(Exception):
    """A bundle that cannot be used; the message is one line for the user."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_member(root: Path, rel: str) -> Path:
    """``root/rel``, refusing absolute paths, ``..`` and symlinks that leave ``root``."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not rel:
        raise BundleError(f"bundle file {rel!r} points outside the bundle")
    full = root / p
    if full.is_symlink() or not full.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"bundle file {rel!r} is a link or leaves the bundle")
    return full


@dataclass(frozen=True)
class GraphEntry:
    file: str
    objective: str
    layer: str
    tensor: str
    inputs: dict
    outputs: dict


class Bundle:
    def __init__(self, root: Path, manifest: dict):
        self.root = root
        self.manifest = manifest

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> "Bundle":
        root = Path(path)
        if not root.exists():
            raise BundleError(f"no bundle at {root}")
        if not root.is_dir():
            raise BundleError(f"{root} is not a bundle directory")
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise BundleError(f"{root} has no {MANIFEST}; is it an ortviz bundle?")
        try:
            manifest = json.loads(mpath.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{mpath} is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f"{mpath} is not an ortviz bundle manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"bundle format version {manifest.get('format_version')!r} is not "
                              f"supported (this ortviz reads version {FORMAT_VERSION})")
        bundle = cls(root, manifest)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        files = self.manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise BundleError("bundle manifest lists no files")
        for rel, digest in sorted(files.items()):
            full = safe_member(self.root, rel)
            if not full.is_file():
                raise BundleError(f"bundle file {rel} is missing")
            if sha256(full) != digest:
                raise BundleError(f"bundle file {rel} does not match its sha256 in the manifest "
                                  "(tampered or corrupted)")
        present = {str(p.relative_to(self.root)) for p in self.root.rglob("*")
                   if p.is_file() or p.is_symlink()}
        extra = sorted(present - set(files) - {MANIFEST} - {p for p in present if p.endswith(".lock")})
        if extra:
            raise BundleError(f"bundle holds a file its manifest does not list: {extra[0]}")

    # -- what is inside ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def input(self) -> dict:
        return self.manifest["input"]

    @property
    def labels(self) -> list[str]:
        return self.manifest["labels"]

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    @property
    def forward_path(self) -> Path:
        return safe_member(self.root, self.manifest["forward"]["file"])

    def graphs(self) -> list[GraphEntry]:
        return [GraphEntry(**g) for g in self.manifest["graphs"]]

    def graph(self, objective: str, layer: str) -> GraphEntry:
        for g in self.graphs():
            if g.objective == objective and g.layer == layer:
                return g
        have = sorted({g.layer for g in self.graphs() if g.objective == objective})
        if not have:
            raise BundleError(f"bundle has no {objective} graphs; re-export it with the plugin "
                              "that needs them installed")
        import difflib
        near = difflib.get_close_matches(layer, have, n=3)
        hint = f"did you mean {', '.join(near)}?" if near else f"available: {', '.join(have)}"
        raise BundleError(f"bundle has no {objective} graph for layer {layer!r}; {hint}")

    def path_of(self, rel: str) -> Path:
        return safe_member(self.root, rel)
