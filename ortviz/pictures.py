"""What the Python API returns: a :class:`Picture` (one result and its sidecar's content) and
:class:`Pictures` (several, a list), both showing themselves in Jupyter.

A ``Picture`` is its image in a notebook (``_repr_png_``) with a one-line caption
(``_repr_html_``: technique, target, status, the model's top-1 and its probability);
``Pictures`` is a grid of them. ``to_pil()`` gives a PIL image, ``show()`` displays it (inline
in a notebook, the system's image viewer elsewhere), ``save(path)`` writes the image and its
sidecar as the CLI does.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ortviz.render.context import Result
from ortviz.run import progress
from ortviz.run.write import write_result


@dataclass
class Picture:
    """One picture a technique made: the image, the model's top-5 on it, the objective's
    history, the run's status, and ``meta``, the content of its JSON sidecar."""

    result: Result
    meta: dict

    @property
    def image(self) -> np.ndarray:
        """The picture, HxWx3 uint8 RGB."""
        return self.result.image

    @property
    def top5(self) -> list:
        """The model's five most likely classes on the picture: dicts of class, label, probability."""
        return self.result.top5

    @property
    def history(self) -> list:
        """The objective's value at each iteration."""
        return self.result.history

    @property
    def status(self) -> str:
        """``complete``, ``blank: <why>`` (a unit that never responded), ``interrupted`` or
        ``stopped: <reason>``."""
        return self.result.status

    def save(self, path) -> list[Path]:
        """Write the image to ``path`` and its sidecar to ``path + ".json"``; returns the
        files written."""
        return write_result(Path(path), self.result, self.meta)

    def to_pil(self) -> Image.Image:
        """The picture as a PIL image (RGBA where the run made an alpha channel,
        ``transparency``)."""
        if self.result.alpha is not None:
            return Image.fromarray(np.dstack([self.image, self.result.alpha]), "RGBA")
        return Image.fromarray(self.image, "RGB")

    def show(self) -> None:
        """Display the picture: inline in a notebook, else the system's image viewer."""
        if not _display(self):
            self.to_pil().show()

    def caption(self) -> str:
        """``deepdream at _blocks.10 · complete · model sees tabby 0.62`` (plain text)."""
        m = self.meta
        what = m.get("technique", "?")
        target = m.get("target")
        objective = (m.get("params") or {}).get("objective")
        if target:
            what += f" of {target['class']} {_short(target['label'])}"
        elif isinstance(objective, str) and objective.strip() and objective != m.get("layer"):
            what += f" of {objective}"
        elif m.get("layer"):
            what += f" at {m['layer']}"
        parts = [what, self.status]
        if self.top5:
            best = self.top5[0]
            parts.append(f"model sees {_short(best['label'])} {best['probability']:.2f}")
        return " · ".join(parts)

    def _repr_png_(self) -> bytes:
        return _png(self.image)

    def _repr_html_(self) -> str:
        return _figure(self)

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"<Picture {w}x{h}: {self.caption()}>"


class Pictures(list):
    """Several pictures (a list): a grid in a notebook, ``save`` writes each."""

    def grid(self, columns: int = 4, gap: int = 4) -> Image.Image:
        """The pictures side by side, ``columns`` to a row, on white (one PIL image)."""
        if not self:
            raise ValueError("no pictures to put in a grid")
        cols = max(1, min(columns, len(self)))
        w = max(p.image.shape[1] for p in self)
        h = max(p.image.shape[0] for p in self)
        rows = -(-len(self) // cols)
        sheet = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap), "white")
        for k, p in enumerate(self):
            sheet.paste(p.to_pil(), ((k % cols) * (w + gap), (k // cols) * (h + gap)))
        return sheet

    def _repr_png_(self) -> bytes | None:
        return _png(np.asarray(self.grid())) if self else None

    def _repr_html_(self) -> str:
        cells = "".join(_figure(p, width=224) for p in self)
        return (f'<div style="display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start">'
                f"{cells}</div>")

    def show(self) -> None:
        if not _display(self):
            for p in self:
                p.show()

    def save(self, pattern) -> list[Path]:
        """Write each picture as ``pattern`` with ``-0``, ``-1``, ... before the suffix."""
        base = Path(pattern)
        written = []
        for k, p in enumerate(self):
            written += p.save(base.with_name(f"{base.stem}-{k}{base.suffix}"))
        return written

    def __repr__(self) -> str:
        return f"<Pictures: {len(self)}>" + "".join(f"\n  {p!r}" for p in self)


def _short(label: str) -> str:
    return label.split(",")[0]


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _figure(pic: Picture, width: int | None = None) -> str:
    data = base64.b64encode(pic._repr_png_()).decode("ascii")
    size = f' width="{width}"' if width else ""
    return (f'<figure style="margin:0;display:inline-block;text-align:center">'
            f'<img src="data:image/png;base64,{data}"{size}/>'
            f'<figcaption style="font-size:small">{html.escape(pic.caption())}</figcaption>'
            f"</figure>")


def _display(value) -> bool:
    """Show ``value`` inline where a notebook runs; False elsewhere."""
    if not progress.in_notebook():
        return False
    from IPython.display import display  # optional: only inside IPython
    display(value)
    return True
