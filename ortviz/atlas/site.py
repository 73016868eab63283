"""The site on disk: the atlas record (``atlas.json``), its pages, stylesheet, script and photos.

The record is made from the plan and what is on disk: a unit's entry says ``complete`` only
when its image and sidecar are there with the unit's key (see :mod:`ortviz.atlas.keys`), and
takes its parameters and top-5 from that sidecar. Every file is written to a temporary name in
its directory and renamed into place, so an interrupted run leaves each page either as it was
or complete; ``atlas.json`` is written last.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ortviz import __version__
from ortviz.atlas import assets, pages
from ortviz.atlas.examples import top_photos
from ortviz.atlas.keys import is_done, read_sidecar, sidecar_path
from ortviz.atlas.plan import Unit, slug

PHOTO_SIDE = 320


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def shown(e: dict) -> bool:
    """The entry has a picture: ``complete``, or ``blank`` (a dead unit's, with its message)."""
    return e["status"] in ("complete", "blank")


def _entry(unit: Unit, site: Path, errors: dict[str, str]) -> dict:
    e = {"unit": unit.id, "image": unit.path, "sidecar": str(sidecar_path(Path(unit.path))),
         "key": unit.key, "technique": unit.technique, "params": unit.params, "seed": unit.seed}
    if is_done(unit, site):
        meta = read_sidecar(site / unit.path) or {}
        status = str(meta.get("status"))
        e.update(status="complete" if status == "complete" else "blank", top5=meta.get("top5") or [],
                 params=meta.get("params", unit.params),
                 final_objective=meta.get("final_objective"),
                 seconds=(meta.get("timing") or {}).get("seconds"))
        if status != "complete":
            e["message"] = status
        if "diversity" in meta:
            e["diversity"] = meta["diversity"]
    else:
        e.update(status="failed" if unit.id in errors else "missing",
                 error=errors.get(unit.id, "not rendered yet"))
    return e


def record(bundle, units: list[Unit], site: Path, errors: dict[str, str],
           means: dict[str, dict[str, np.ndarray]], photo_names: list[str], k: int,
           layers: list[str]) -> dict:
    """The atlas as data: what ``atlas.json`` holds and the pages are made from."""
    m = bundle.manifest
    photo_image = {n: f"photos/{Path(n).stem}.jpg" for n in photo_names}
    channels, classes, photo_units, extras = [], [], [], []
    for u in units:
        e = _entry(u, site, errors)
        if u.kind in ("negative", "diversity"):   # on the channel's page (it comes first)
            e.update(kind=u.kind, variant=u.variant)
            extras.append(e)
            owner = next(c for c in reversed(channels) if c["objective"] == u.objective)
            if u.kind == "negative":
                owner["negative"] = e
            else:
                owner.setdefault("diversity", []).append(e)
        elif u.kind == "channel":
            e.update(layer=u.layer, channel=u.index, objective=u.objective,
                     page=f"channels/{slug(u.layer)}/{u.index}.html",
                     examples=[dict(x, image=photo_image[x["photo"]])
                               for x in top_photos(means.get(u.layer, {}), u.index, k)] if k else [])
            channels.append(e)
        elif u.kind == "class":
            e.update({"class": u.index, "label": bundle.labels[u.index], "page": f"classes/{u.index}.html"})
            classes.append(e)
        else:
            e.update(kind=u.kind, layer=u.layer, photo=u.photo, page=u.path)
            photo_units.append(e)
    table = {l["name"]: l for l in bundle.layers}
    layer_rows = []
    for name in layers:
        mine = [c for c in channels if c["layer"] == name]
        done = [c for c in mine if c["status"] == "complete"]
        others = [p for p in photo_units if p["layer"] == name and p["status"] == "complete"]
        thumb = (done or others or [None])[0]
        layer_rows.append({"name": name, "slug": slug(name), "op": table[name].get("op", ""),
                           "shape": table[name]["shape"], "channels": int(table[name]["shape"][1]),
                           "page": f"layers/{slug(name)}.html",
                           "listed": [c["channel"] for c in mine],
                           "rendered": [c["channel"] for c in done],
                           **({"blank": [c["channel"] for c in mine if c["status"] == "blank"]}
                              if any(c["status"] == "blank" for c in mine) else {}),
                           "thumbnail": thumb["image"] if thumb else None})
    every = channels + classes + photo_units + extras
    blanks = sum(e["status"] == "blank" for e in every)
    return {
        "format": "ortviz-atlas", "format_version": 1,
        "generated_by": {"ortviz": __version__},
        "model": {"name": bundle.name, "source": m["model"].get("source", ""),
                  "bundle": str(bundle.root), "manifest_sha256": bundle.manifest_sha256,
                  "input": m["input"]["shape"][1:], "classes": len(bundle.labels)},
        "counts": {"units": len(every),
                   "complete": sum(e["status"] == "complete" for e in every),
                   "failed": sum(e["status"] == "failed" for e in every),
                   **({"blank": blanks} if blanks else {})},
        "layers": layer_rows, "channels": channels, "classes": classes,
        "photos": [{"name": n, "image": photo_image[n]} for n in photo_names],
        "photo_units": photo_units,
        "failures": [{"unit": e["unit"], "error": e["error"]} for e in every if e["status"] == "failed"],
    }


def _thumbnail(rgb: np.ndarray) -> bytes:
    im = Image.fromarray(rgb)
    im.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _neighbours(entries: list[dict]):
    done = [e for e in entries if shown(e)]
    for i, e in enumerate(done):
        yield e, done[i - 1] if i else None, done[i + 1] if i + 1 < len(done) else None


def write_site(site: Path, atlas: dict, photos: dict[str, np.ndarray]) -> None:
    site.mkdir(parents=True, exist_ok=True)
    for p in atlas["photos"]:
        write_bytes(site / p["image"], _thumbnail(photos[p["name"]]))
    write_text(site / "style.css", assets.CSS)
    write_text(site / "atlas.js", assets.JS)
    for layer in atlas["layers"]:
        mine = [c for c in atlas["channels"] if c["layer"] == layer["name"]]
        for e, prev, nxt in _neighbours(mine):
            write_text(site / e["page"], pages.channel_page(atlas, e, prev, nxt))
        write_text(site / layer["page"], pages.layer_page(atlas, layer))
    for e, prev, nxt in _neighbours(atlas["classes"]):
        write_text(site / e["page"], pages.class_page(atlas, e, prev, nxt))
    write_text(site / "index.html", pages.index(atlas))
    write_text(site / "atlas.json", json.dumps(atlas, indent=1) + "\n")
