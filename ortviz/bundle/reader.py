"""The bundle: a directory holding a classifier and its portable gradient graphs.

Layout (format version 2)::

    manifest.json          what is here (see docs/bundle-format.md)
    forward.onnx           classifier; outputs: logits, then every layer of the layer table
    weights.bin            the one external-data file every graph points into
    grad.features__<layer>.onnx   per layer: L = <W, phi> + 1/2 <A, phi*phi>, W and A inputs
    grad.logits__logits.onnx      L = <Wz, z> + <C, log_softmax(z)>
    grad.<objective>__<layer>.onnx   any other objective a technique plugin declared

Every gradient graph outputs ``loss`` and the input gradient, and records in its ONNX metadata
the bundle's id and the objective and layer it computes (checked against the manifest).
Format 1 (one graph per baked-in objective) is refused with a "re-export" line.

Bundles may come from anywhere, so opening one trusts nothing in it. Before onnxruntime reads
any graph, :meth:`Bundle.open` checks the manifest's structure (every field present, of the right
type, and consistent: labels per class, one graph file per entry, ...), its format version, that
every file it names is present, inside the directory (no absolute paths, ``..`` or symlinks) and
unchanged (sha256), that nothing unexpected lies beside them, and that every graph's external
data points only at files the manifest lists (read with ``load_external_data=False``; offsets
inside the file) and that the graphs' inputs and outputs are the ones the manifest describes.
Every failure is a :class:`BundleError` with a one-line message. The manifest's structure is
checked by :mod:`ortviz.bundle.manifest`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import weakref
from pathlib import Path

import onnx

from ortviz._util import paths
from ortviz.bundle.graphs import graph_name
from ortviz.bundle.manifest import GraphEntry, check_manifest
from ortviz.errors import BundleError, did_you_mean, first_line

FORMAT = "ortviz-bundle"
FORMAT_VERSION = 2
# What each graph records about itself in its ONNX metadata_props (checked at open).
IDENTITY_KEYS = ("ortviz.bundle", "ortviz.role", "ortviz.objective", "ortviz.layer", "ortviz.tensor")
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_member(root: Path, rel: str) -> Path:
    """``root/rel``, refusing absolute paths, ``..`` and symlinks (at any component), so the
    result stays inside ``root`` without resolving any link."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise BundleError(f"bundle file name {rel!r} is not a valid relative path")
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise BundleError(f"bundle file {rel!r} points outside the bundle")
    full = root
    for part in p.parts:
        full = full / part
        if full.is_symlink():
            raise BundleError(f"bundle file {rel!r} is a link or leaves the bundle")
    return full


def _tensors(graph):
    """Every TensorProto a graph holds: initializers, sparse ones, attributes (whatever their
    declared type), subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            if attr.tensors:
                yield from attr.tensors
            sparse = list(attr.sparse_tensors)
            if attr.HasField("sparse_tensor"):
                sparse.append(attr.sparse_tensor)
            for sp in sparse:
                yield sp.values
                yield sp.indices
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _dims(value_info) -> list | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def _same_shape(declared, want) -> bool:
    return declared is None or (len(declared) == len(want) and
                                all(d is None or d == w for d, w in zip(declared, want)))


def _pin(root: Path) -> tuple[Path, int | None]:
    """Where to read the bundle from. On Linux: ``/proc/self/fd/N`` for a descriptor of the
    directory, so every later read (the hashes, the graphs, onnxruntime's own loads) comes from
    the directory that was opened, even if a re-export swaps another one into its path."""
    if not sys.platform.startswith("linux"):
        return root, None
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return root, None
    base = Path(f"/proc/self/fd/{fd}")
    if not base.is_dir():  # no /proc
        os.close(fd)
        return root, None
    return base, fd


def _check_root(root: Path) -> None:
    """A bundle path that is missing, a file, a FIFO, a device, a link loop or a /proc entry is
    refused in its own line before anything is opened (``paths.odd``)."""
    if not os.path.lexists(root):
        raise BundleError(f"no bundle at {root}")
    why = paths.odd(root, "a bundle directory", directory=True)
    if why and why.endswith("is a file, not a bundle directory"):
        raise BundleError(f"{root} is not a bundle directory")
    if why:
        raise BundleError(why)


class Bundle:
    def __init__(self, root: Path, manifest: dict, manifest_sha256: str | None = None,
                 base: Path | None = None, fd: int | None = None):
        self.root = root                  # as the user named it (messages, sidecars)
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self._base = base or root         # where files are read from (see _pin)
        self._pinned = fd is not None
        self._identity = self._dir_identity(self._base)
        self._close = weakref.finalize(self, os.close, fd) if fd is not None else None

    def close(self) -> None:
        """Release the directory descriptor now (else when the bundle is garbage-collected);
        sessions already made keep working."""
        if self._close is not None:
            self._close()

    @staticmethod
    def _dir_identity(path: Path):
        try:
            st = os.stat(path)
            return (st.st_dev, st.st_ino)
        except OSError:
            return None

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> "Bundle":
        root = Path(path)
        _check_root(root)
        base, fd = _pin(root)
        bundle = None
        try:
            try:
                bundle = cls._read(root, base, fd)
                if verify:
                    bundle.verify()
            except (BundleError, OSError) as exc:
                if bundle is not None:
                    bundle._check_not_replaced()  # a re-export deleted it while it was read
                if isinstance(exc, BundleError):
                    raise
                name = Path(exc.filename).name if exc.filename else "a file"
                raise BundleError(f"cannot read {name} in bundle {root}: "
                                  f"{exc.strerror or first_line(exc)}") from None
            return bundle
        except BaseException:
            if bundle is not None:
                bundle.close()
            elif fd is not None:
                os.close(fd)
            raise

    @classmethod
    def _read(cls, root: Path, base: Path, fd: int | None) -> "Bundle":
        mpath = base / MANIFEST
        if mpath.is_symlink() or not mpath.is_file():
            raise BundleError(f"{root} has no {MANIFEST}; is it an ortviz bundle?")
        mpath_shown = root / MANIFEST
        if mpath.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{mpath_shown} is too large for a bundle manifest")
        raw = mpath.read_bytes()
        try:
            manifest = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BundleError(f"{mpath_shown} is not valid JSON ({first_line(exc)})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BundleError(f"{mpath_shown} is not an ortviz bundle manifest")
        version = manifest.get("format_version")
        if version == 1 and not isinstance(version, bool):
            raise BundleError(f"bundle {root} has format version 1 (one graph per objective); "
                              f"re-export it with this version of ortviz (format "
                              f"{FORMAT_VERSION}), e.g. with the recipe in its manifest")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise BundleError(f"bundle format version {version!r} is not "
                              f"supported (this ortviz reads version {FORMAT_VERSION})")
        check_manifest(manifest)
        return cls(root, manifest, hashlib.sha256(raw).hexdigest(), base, fd)

    def verify(self) -> None:
        """Files present, inside, unchanged and nothing extra; then the graphs' contents."""
        files = self.manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise BundleError("bundle manifest lists no files")
        for rel, digest in sorted(files.items()):
            full = safe_member(self._base, rel)
            if not full.is_file():
                raise BundleError(f"bundle file {rel} is missing")
            if sha256(full) != digest:
                self._check_not_replaced()
                raise BundleError(f"bundle file {rel} does not match its sha256 in the manifest "
                                  "(tampered or corrupted)")
        extra = sorted(paths.files_under(self._base) - set(files) - {MANIFEST})
        if extra:  # at any depth; empty folders, however deep, hold nothing and are ignored
            name = extra[0] if len(extra[0]) <= 160 else f"{extra[0][:60]}...{extra[0][-60:]}"
            raise BundleError(f"bundle holds a file its manifest does not list: {name}")
        self.check_graphs()

    def check_graphs(self) -> None:
        """Before onnxruntime sees a graph: its external data stays inside the bundle, in
        files the manifest lists, and its inputs and outputs are the manifest's."""

        m = self.manifest
        image, shape = m["input"]["name"], m["input"]["shape"]
        fwd = m["forward"]
        layer_shapes = {l["tensor"]: l["shape"] for l in m["layers"]}
        layer_shapes[m["logits"]["name"]] = m["logits"]["shape"]
        bid = m["bundle_id"]
        jobs = [(fwd["file"], {image: shape}, {t: layer_shapes.get(t) for t in fwd["outputs"]},
                 {"ortviz.bundle": bid, "ortviz.role": "forward"})]
        jobs += [(g["file"], g["inputs"], {g["outputs"]["loss"]: None, g["outputs"]["grad"]: shape},
                  {"ortviz.bundle": bid, "ortviz.role": "gradient", "ortviz.objective": g["objective"],
                   "ortviz.layer": g["layer"], "ortviz.tensor": g["tensor"]})
                 for g in m["graphs"]]
        sizes: dict = {}
        for rel, want_in, want_out, identity in jobs:
            full = safe_member(self._base, rel)
            try:
                model = onnx.load(str(full), load_external_data=False)
            except Exception as exc:
                raise BundleError(f"bundle file {rel} is not a readable ONNX model "
                                  f"({first_line(exc)})") from None
            self._check_identity(rel, model, identity)
            for tensor in _tensors(model.graph):
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    self._check_external(rel, tensor, sizes)
            inits = {i.name for i in model.graph.initializer}
            got_in = {v.name: v for v in model.graph.input if v.name not in inits}
            if set(got_in) != set(want_in):
                raise BundleError(f"bundle file {rel} has inputs {sorted(got_in)}, the manifest "
                                  f"says {sorted(want_in)}")
            got_out = {v.name: v for v in model.graph.output}
            for name, want in want_in.items():
                if not _same_shape(_dims(got_in[name]), want):
                    raise BundleError(f"bundle file {rel}: input {name!r} has shape "
                                      f"{_dims(got_in[name])}, the manifest says {want}")
            for name, want in want_out.items():
                if name not in got_out:
                    raise BundleError(f"bundle file {rel} has no output {name!r} (the manifest "
                                      "names it)")
                if want is not None and not _same_shape(_dims(got_out[name]), want):
                    raise BundleError(f"bundle file {rel}: output {name!r} has shape "
                                      f"{_dims(got_out[name])}, the manifest says {want}")

    @staticmethod
    def _check_identity(rel: str, model, want: dict) -> None:
        """The graph says it is what the manifest says: this bundle's, and the objective and
        layer of its entry (a graph file swapped with another's, hashes updated, is refused)."""
        props = {p.key: p.value for p in model.metadata_props if p.key in IDENTITY_KEYS}
        for key, value in want.items():
            got = props.get(key)
            if got != value:
                what = key.split(".", 1)[1]
                shown = "nothing" if got is None else repr(got[:60])
                raise BundleError(f"bundle file {rel} records {what} {shown}, the manifest says "
                                  f"{value[:60]!r} (graph files swapped or from another bundle)")

    def _check_external(self, rel: str, tensor, sizes: dict) -> None:
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        where = f"bundle file {rel}: tensor {tensor.name[:60]!r} keeps its data at {loc[:120]!r}"
        key = (rel, loc)
        size = sizes.get(key)
        if size is None:
            size = sizes[key] = self._external_file_size(rel, loc, where)
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except (ValueError, TypeError):
            raise BundleError(f"{where} with a non-numeric offset or length") from None
        if offset < 0 or (length is not None and length < 0) or offset + (length or 0) > size:
            raise BundleError(f"{where} at offset {offset} length {length}, past the end of "
                              f"the {size}-byte file")

    def _external_file_size(self, rel: str, loc: str, where: str) -> int:
        # protobuf hands back bytes for a string field that is not UTF-8
        p = Path(loc) if isinstance(loc, str) and loc and "\x00" not in loc else None
        if p is None:
            raise BundleError(f"{where}, which is not a file name")
        if p.is_absolute() or ".." in p.parts:
            raise BundleError(f"{where}, outside the bundle (absolute path or ..)")
        q = Path(rel).parent / p
        listed, target = str(q), self._base / q
        if any((self._base / Path(*q.parts[:k])).is_symlink() for k in range(1, len(q.parts) + 1)):
            raise BundleError(f"{where}, which is a symlink")
        if listed not in self.manifest["files"] or os.path.normpath(loc) != loc:  # "./w.bin" too
            raise BundleError(f"{where}, a file the manifest does not list")
        return target.stat().st_size

    def _gone(self) -> bool:
        """The bundle's path now names another directory, or the one read from was deleted."""
        if self._dir_identity(self.root) != self._identity:
            return True
        try:
            return os.stat(self._base).st_nlink == 0
        except OSError:
            return True

    def _check_not_replaced(self) -> None:
        if self._gone():
            raise BundleError(f"bundle {self.root} was replaced or deleted while in use "
                              "(re-exported?); open it again")

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
        return self.path_of(self.manifest["forward"]["file"])

    def graphs(self) -> list[GraphEntry]:
        return [GraphEntry(**g) for g in self.manifest["graphs"]]

    def graph(self, objective: str, layer: str) -> GraphEntry:
        """The graph computing ``objective`` at ``layer``; a format-1 objective name
        (``class_score``, ``feature_energy``, ...) gives the built-in graph that serves it."""
        objective = graph_name(objective)
        for g in self.graphs():
            if g.objective == objective and g.layer == layer:
                return g
        have = sorted({g.layer for g in self.graphs() if g.objective == objective})
        if not have:
            raise BundleError(f"bundle has no {objective} graphs; re-export it with the plugin "
                              "that needs them installed")
        hint = did_you_mean(layer, have) or f"available: {', '.join(have)}"
        raise BundleError(f"bundle has no {objective} graph for layer {layer!r}; {hint}")

    def path_of(self, rel: str) -> Path:
        """A file of this bundle, for loading it now: in the directory that was opened and
        verified (see ``_pin``). Without a pinned directory, refused if the path now names
        another directory (a re-export since): its files would not be the verified ones."""
        if not self._pinned:
            self._check_not_replaced()
        full = safe_member(self._base, rel)
        if not full.is_file():
            self._check_not_replaced()
            raise BundleError(f"bundle file {rel} is missing")
        return full
