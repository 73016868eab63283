"""Write a bundle directory: forward graph, one shared weights file, gradient graphs, manifest.

Everything is written into a temporary sibling directory and renamed into place at the end, so
a failed or interrupted export never leaves a half-written bundle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import onnx
from onnx import numpy_helper

from ..bundle import FORMAT, FORMAT_VERSION, MANIFEST, sha256
from .gradients import GradientGraph

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


def write_bundle(out: Path, forward: onnx.ModelProto, graphs: list[GradientGraph],
                 manifest: dict, force: bool = False) -> Path:
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        values = {i.name: numpy_helper.to_array(i).tobytes() for i in forward.graph.initializer}
        fwd = onnx.ModelProto()
        fwd.CopyFrom(forward)
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
            (tmp / rel).write_bytes(model.SerializeToString())
            image = manifest["input"]["name"]
            entries.append({
                "file": rel, "objective": g.objective, "layer": g.layer, "tensor": g.tensor,
                "inputs": {image: manifest["input"]["shape"], **g.inputs},
                "outputs": {"loss": "loss", "grad": g.grad},
            })
        manifest = dict(manifest, graphs=entries, weights=WEIGHTS)
        manifest["forward"] = dict(manifest.get("forward", {}), file=FORWARD)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        manifest["files"] = {f: sha256(tmp / f) for f in files}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        for p in [tmp, *tmp.rglob("*")]:  # mkdtemp made it private; a bundle is for sharing
            p.chmod(0o755 if p.is_dir() else 0o644)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / "b")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

