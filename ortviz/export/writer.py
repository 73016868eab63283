"""Write a bundle directory: forward graph, one shared weights file, gradient graphs, manifest.

Every graph records what it is in its ONNX ``metadata_props`` (the bundle's id, and for a
gradient graph its objective, layer and tensor); opening the bundle checks them against the
manifest, so graph files swapped between entries or bundles are refused.

Everything is written into a temporary sibling directory, flushed to disk, and swapped into place
at the end under an exclusive lock on ``<bundle>.lock`` (see :mod:`ortviz._util.locking`), so a failed
or interrupted export never leaves a half-written bundle, two exports to one path never mix their
files, and a reader always finds a complete bundle at the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import onnx
from onnx import numpy_helper

from ortviz._util import locking
from ortviz.bundle.reader import FORMAT, FORMAT_VERSION, MANIFEST, sha256
from ortviz.export.gradients import GradientGraph

WEIGHTS = "weights.bin"
FORWARD = "forward.onnx"


def _file_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"


def _share_weights(graph: onnx.ModelProto, refs: dict[str, onnx.TensorProto],
                   values: dict[str, bytes]) -> None:
    """Point the graph's copies of forward weights at the shared weights file."""
    for k, init in enumerate(graph.graph.initializer):
        ref = refs.get(init.name)
        if ref is None:
            continue
        if numpy_helper.to_array(init).tobytes() != values[init.name]:
            continue  # same name, different value: keep it inline
        graph.graph.initializer[k].CopyFrom(ref)


def _bundle_id(forward: onnx.ModelProto, graphs: list[GradientGraph], manifest: dict) -> str:
    """What ties a bundle's graphs together: a digest of the forward graph, every gradient
    graph with its objective and layer, and the manifest's description of the model."""
    h = hashlib.sha256()
    h.update(json.dumps({k: manifest[k] for k in ("model", "input", "logits", "layers")},
                        sort_keys=True).encode())
    h.update(forward.SerializeToString())
    for g in graphs:
        h.update(f"{g.objective}\0{g.layer}\0".encode())
        h.update(g.lowered.SerializeToString())
    return h.hexdigest()[:32]


def _tag(model: onnx.ModelProto, props: dict) -> None:
    """Record in the graph what it is (see ortviz.bundle.reader.IDENTITY_KEYS); the bundle checks it."""
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def check_replaceable(out: Path, force: bool) -> None:
    """Refuse to replace what is not a bundle: only a directory holding a manifest (or an
    empty one) is replaced, and only with ``force``."""
    out = Path(out)
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    if out.is_symlink() or not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a bundle directory (a file or a link); "
                              "not replacing it")
    if not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not an ortviz bundle (no {MANIFEST}); "
                              "not replacing it")


def swap_into_place(tmp: Path, out: Path, force: bool = False) -> None:
    """Move the finished bundle directory ``tmp`` to ``out`` under the lock ``<out>.lock``.

    An existing bundle is exchanged atomically with the new one (``out`` is never absent or
    partial) and then deleted; without the atomic exchange it is renamed aside first.
    """
    tmp, out = Path(tmp), Path(out)
    with locking.exclusive(locking.lock_path(out)):
        check_replaceable(out, force)  # again, under the lock: another export may have finished
        if out.exists():
            if locking.exchange(tmp, out):
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old bundle
            else:
                old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
                os.replace(out, old / "b")
                try:
                    os.replace(tmp, out)
                except BaseException:
                    os.replace(old / "b", out)
                    raise
                finally:
                    shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        locking.fsync_path(out.parent)


def write_bundle(out: Path, forward: onnx.ModelProto, graphs: list[GradientGraph],
                 manifest: dict, force: bool = False) -> Path:
    out = Path(out)
    check_replaceable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        values = {i.name: numpy_helper.to_array(i).tobytes() for i in forward.graph.initializer}
        bundle_id = _bundle_id(forward, graphs, manifest)
        fwd = onnx.ModelProto()
        fwd.CopyFrom(forward)
        _tag(fwd, {"ortviz.bundle": bundle_id, "ortviz.role": "forward"})
        onnx.save_model(fwd, tmp / FORWARD, save_as_external_data=True,
                        all_tensors_to_one_file=True, location=WEIGHTS, size_threshold=1024)
        refs = {i.name: i for i in fwd.graph.initializer
                if i.data_location == onnx.TensorProto.EXTERNAL}
        entries, used = [], set()
        for g in graphs:
            stem = _file_stem(f"{g.objective}__{g.layer}")
            while stem in used:
                stem += "_"
            used.add(stem)
            rel = f"grad.{stem}.onnx"  # beside weights.bin: external data paths stay plain names
            model = onnx.ModelProto()
            model.CopyFrom(g.lowered)
            _share_weights(model, refs, values)
            _tag(model, {"ortviz.bundle": bundle_id, "ortviz.role": "gradient",
                         "ortviz.objective": g.objective, "ortviz.layer": g.layer,
                         "ortviz.tensor": g.tensor})
            (tmp / rel).write_bytes(model.SerializeToString())
            image = manifest["input"]["name"]
            entries.append({
                "file": rel, "objective": g.objective, "layer": g.layer, "tensor": g.tensor,
                "inputs": {image: manifest["input"]["shape"], **g.inputs},
                "outputs": {"loss": "loss", "grad": g.grad},
            })
        manifest = dict(manifest, bundle_id=bundle_id, graphs=entries, weights=WEIGHTS)
        manifest["forward"] = dict(manifest.get("forward", {}), file=FORWARD)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        manifest["files"] = {f: sha256(tmp / f) for f in files}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        for p in [tmp, *tmp.rglob("*")]:  # mkdtemp made it private; a bundle is for sharing
            p.chmod(0o755 if p.is_dir() else 0o644)
        locking.fsync_tree(tmp)
        swap_into_place(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

