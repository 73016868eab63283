"""The site's HTML pages, made from the atlas record (the content of ``atlas.json``).

Every link is relative, so the site works from ``file://`` and from any web server. Pages:
``index.html`` (model, source, the layer table with a thumbnail per layer, the classes, the
photos), ``layers/LAYER.html`` (the layer's channels as a grid, its DeepDreams and inversions),
``channels/LAYER/N.html`` and ``classes/N.html`` (the picture at full size, its sidecar
parameters, the model's top-5 on it, and for channels the dataset examples).
"""

from __future__ import annotations

import html
import json
import posixpath
from urllib.parse import quote


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def href(frm: str, to: str) -> str:
    """``to`` (a site path) as seen from the page ``frm``."""
    return quote(posixpath.relpath(to, posixpath.dirname(frm) or "."))


def page(path: str, title: str, body: str, crumbs: list[tuple[str, str | None]]) -> str:
    trail = " / ".join(f'<a href="{href(path, p)}">{esc(t)}</a>' if p else esc(t) for t, p in crumbs)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{esc(title)}</title>\n'
            f'<link rel="stylesheet" href="{href(path, "style.css")}">\n'
            f'<script src="{href(path, "atlas.js")}"></script>\n</head>\n<body>\n'
            f'<header><div class="crumbs">{trail}</div><h1>{esc(title)}</h1></header>\n'
            f'<main>\n{body}\n</main>\n</body>\n</html>\n')


def _top5(top5: list) -> str:
    if not top5:
        return '<p class="muted">no top-5 recorded</p>'
    rows = "".join(f'<tr><td class="num">{esc(t["class"])}</td><td>{esc(t["label"])}</td>'
                   f'<td class="num">{float(t["probability"]):.3f}</td></tr>' for t in top5)
    return f"<table><tr><th>class</th><th>label</th><th>p</th></tr>{rows}</table>"


def _params(entry: dict) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(json.dumps(v))}</td></tr>"
                   for k, v in sorted((entry.get("params") or {}).items()))
    extra = [("technique", entry.get("technique")), ("seed", entry.get("seed")),
             ("key", (entry.get("key") or "")[:16])]
    rows += "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in extra)
    return f"<table>{rows}</table>"


def _cell(path: str, e: dict, label: str, cls: str) -> str:
    if e["status"] == "blank":   # a dead unit: its (grey) picture, marked, with the reason
        return (f'<a class="unit {cls} blank" data-label="{esc(label)}" href="{href(path, e["page"])}" '
                f'title="{esc(e.get("message", "blank"))}"><img src="{href(path, e["image"])}" '
                f'alt="{esc(label)}"><span>{esc(label)} · blank</span></a>')
    if e["status"] != "complete":
        return (f'<div class="unit {cls} failed" data-label="{esc(label)}">{esc(label)}: '
                f'{esc(e.get("error") or e["status"])}</div>')
    return (f'<a class="unit {cls}" data-label="{esc(label)}" href="{href(path, e["page"])}">'
            f'<img src="{href(path, e["image"])}" alt="{esc(label)}"><span>{esc(label)}</span></a>')


def _photo_units(path: str, units: list[dict]) -> str:
    cells = [_cell(path, u, f'{u["kind"]} · {u["photo"]}', "photo-unit") for u in units]
    if not cells:
        return ""
    return f'<h2>DeepDream and inversion</h2>\n<div class="grid">{"".join(cells)}</div>'


def index(atlas: dict) -> str:
    path, m = "index.html", atlas["model"]
    rows = []
    for layer in atlas["layers"]:
        thumb = (f'<img class="thumb" src="{href(path, layer["thumbnail"])}" alt="">'
                 if layer.get("thumbnail") else "")
        rows.append(f'<tr><td><a href="{href(path, layer["page"])}">{thumb}</a></td>'
                    f'<td><a href="{href(path, layer["page"])}">{esc(layer["name"])}</a></td>'
                    f'<td>{esc(layer["op"])}</td><td>{esc("×".join(map(str, layer["shape"][1:])))}</td>'
                    f'<td class="num">{len(layer["rendered"])} / {layer["channels"]}</td></tr>')
    table = ("<table><tr><th></th><th>layer</th><th>op</th><th>shape (C×H×W)</th>"
             f"<th>channels shown</th></tr>{''.join(rows)}</table>")
    classes = "".join(_cell(path, c, f'{c["class"]} {c["label"]}', "class") for c in atlas["classes"])
    photos = "".join(f'<figure><img src="{href(path, p["image"])}" alt="{esc(p["name"])}">'
                     f'<figcaption>{esc(p["name"])}</figcaption></figure>' for p in atlas["photos"])
    fails = atlas["failures"]
    body = (f'<p>{esc(m["name"])}, from <code>{esc(m["source"])}</code>; input '
            f'{esc("×".join(map(str, m["input"])))}, {m["classes"]} classes; manifest sha256 '
            f'<code>{esc(m["manifest_sha256"][:16])}</code>. Made by ortviz '
            f'{esc(atlas["generated_by"]["ortviz"])}; everything is listed in '
            f'<a href="atlas.json">atlas.json</a>.</p>\n'
            + (f'<p class="muted">{len(fails)} picture(s) failed; see atlas.json.</p>\n' if fails else "")
            + f"<h2>Layers</h2>\n{table}\n"
            + (f'<h2>Classes</h2>\n<div class="grid">{classes}</div>\n' if classes else "")
            + (f'<h2>Photos</h2>\n<div class="examples">{photos}</div>\n' if photos else ""))
    return page(path, f"{m['name']} atlas", body, [("atlas", None)])


def layer_page(atlas: dict, layer: dict) -> str:
    path = layer["page"]
    cells = "".join(_cell(path, c, str(c["channel"]), "channel")
                    for c in atlas["channels"] if c["layer"] == layer["name"])
    units = [u for u in atlas["photo_units"] if u["layer"] == layer["name"]]
    body = (f'<p>{esc(layer["op"])} output, {layer["channels"]} channels '
            f'({esc("×".join(map(str, layer["shape"][2:])))} positions); '
            f'{len(layer["rendered"])} shown.</p>\n'
            '<input id="filter" type="search" placeholder="filter by channel number">\n'
            f'<div class="grid" data-channels="{layer["channels"]}">{cells}</div>\n'
            + _photo_units(path, units))
    return page(path, f"layer {layer['name']}", body,
                [("atlas", "index.html"), (layer["name"], None)])


def _nav(path: str, prev: dict | None, nxt: dict | None, up: tuple[str, str]) -> str:
    parts = []
    if prev:
        parts.append(f'<a rel="prev" href="{href(path, prev["page"])}">← previous</a>')
    parts.append(f'<a href="{href(path, up[1])}">{esc(up[0])}</a>')
    if nxt:
        parts.append(f'<a rel="next" href="{href(path, nxt["page"])}">next →</a>')
    return f'<div class="nav">{"".join(parts)}</div>'


def _picture(path: str, e: dict, extra: str) -> str:
    sidecar = f'<p><a href="{href(path, e["sidecar"])}">sidecar (JSON)</a></p>'
    return (f'<div class="picture"><img src="{href(path, e["image"])}" alt="">'
            f'<div><h2>Top-5 of the model on it</h2>{_top5(e.get("top5"))}'
            f'<h2>Parameters</h2>{_params(e)}{sidecar}</div></div>\n{extra}')


def _figure(path: str, x: dict, caption: str) -> str:
    if x["status"] not in ("complete", "blank"):
        return f'<figure class="failed">{esc(caption)}: {esc(x.get("error") or x["status"])}</figure>'
    note = f' ({esc(x["message"])})' if x["status"] == "blank" else ""
    return (f'<figure><img src="{href(path, x["image"])}" alt="{esc(caption)}"><figcaption>'
            f'{esc(caption)}{note}</figcaption></figure>')


def _unit_views(path: str, e: dict) -> str:
    """The channel's negative picture and diversity set, where the atlas made them."""
    out = ""
    if e.get("negative"):
        out += ('<h2>Negative</h2><p class="muted">The channel descended: what it is most '
                f'against.</p><div class="examples">{_figure(path, e["negative"], "negative")}</div>')
    if e.get("diversity"):
        figs = "".join(_figure(path, x, f"#{x['variant']}") for x in e["diversity"])
        d = next((x["diversity"] for x in e["diversity"] if x.get("diversity")), None)
        sim = ""
        if d:
            pairs = [v for i, row in enumerate(d["gram_cosine_similarity"]) for j, v in enumerate(row) if j > i]
            sim = (f' Mean pairwise cosine similarity of their Gram matrices at {esc(d["layer"])}: '
                   f'{sum(pairs) / max(len(pairs), 1):.3f} (1: alike).')
        out += (f'<h2>Diversity</h2><p class="muted">{len(e["diversity"])} pictures of the channel '
                f'made to differ.{sim}</p><div class="examples">{figs}</div>')
    return out


def channel_page(atlas: dict, e: dict, prev: dict | None, nxt: dict | None) -> str:
    path = e["page"]
    layer = next(l for l in atlas["layers"] if l["name"] == e["layer"])
    examples = "".join(
        f'<figure><img src="{href(path, x["image"])}" alt="{esc(x["photo"])}"><figcaption>'
        f'{esc(x["photo"])}: mean {x["mean_activation"]:.4g}</figcaption></figure>'
        for x in e.get("examples") or [])
    extra = (f'<h2>Dataset examples</h2><p class="muted">The photos that excite channel '
             f'{e["channel"]} most (mean activation over positions).</p>'
             f'<div class="examples">{examples}</div>') if examples else ""
    blank = (f'<p class="muted">{esc(e["message"])}</p>\n' if e["status"] == "blank" else "")
    # atlas.js turns this into a link to the live view when ortviz serve --atlas serves the site
    live = f'<p class="live" hidden data-objective="{esc(e["objective"])}"></p>\n'
    body = (_nav(path, prev, nxt, (f"layer {e['layer']}", layer["page"]))
            + f'<p>Objective <code>{esc(e["objective"])}</code>.</p>\n' + live + blank
            + _picture(path, e, _unit_views(path, e) + extra))
    return page(path, f"{e['layer']} channel {e['channel']}", body,
                [("atlas", "index.html"), (e["layer"], layer["page"]), (str(e["channel"]), None)])


def class_page(atlas: dict, e: dict, prev: dict | None, nxt: dict | None) -> str:
    path = e["page"]
    body = _nav(path, prev, nxt, ("atlas", "index.html")) + _picture(path, e, "")
    return page(path, f"class {e['class']}: {e['label']}", body,
                [("atlas", "index.html"), (f"class {e['class']}", None)])
