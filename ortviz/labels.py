"""Class labels: reading label files, and finding a class by index or by name."""

from __future__ import annotations

import difflib
from pathlib import Path


class LabelError(ValueError):
    pass


def read_labels(path: Path) -> list[str]:
    """One label per line; or ImageNet-style TSV lines ``index<TAB>synset<TAB>names``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"cannot read labels file {path}: {exc}") from None
    labels = []
    for k, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        parts = line.split("\t")
        if k == 0 and len(parts) >= 3 and not parts[0].strip().isdigit():
            continue  # a TSV header
        labels.append(parts[-1].strip() if len(parts) >= 3 else line.strip())
    if not labels:
        raise LabelError(f"labels file {path} is empty")
    return labels


def _names(label: str) -> list[str]:
    return [n.strip().lower() for n in label.split(",") if n.strip()]


def find_class(labels: list[str], query: str | int) -> int:
    """A class index from an index (``285``) or a name (``Egyptian cat``, ``flamingo``).

    A name matches a class when it equals one of the class's comma-separated names, ignoring
    case; failing that, when it is a substring of exactly one class's names.
    """
    q = str(query).strip()
    if q.lstrip("-").isdigit():
        i = int(q)
        if not 0 <= i < len(labels):
            raise LabelError(f"class index {i} is out of range (0..{len(labels) - 1})")
        return i
    ql = q.lower().replace("_", " ")
    exact = [i for i, l in enumerate(labels) if ql in _names(l)]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise LabelError(f"class name {q!r} is ambiguous: " +
                         "; ".join(f"{i} ({labels[i]})" for i in exact[:6]))
    part = [i for i, l in enumerate(labels) if any(ql in n for n in _names(l))]
    if len(part) == 1:
        return part[0]
    if len(part) > 1:
        raise LabelError(f"class name {q!r} is ambiguous: " +
                         "; ".join(f"{i} ({labels[i]})" for i in part[:6]) +
                         ("; ..." if len(part) > 6 else ""))
    every = {n: i for i, l in enumerate(labels) for n in _names(l)}
    near = difflib.get_close_matches(ql, list(every), n=4, cutoff=0.6)
    hint = "; did you mean " + ", ".join(f"{n!r} ({every[n]})" for n in near) + "?" if near else ""
    raise LabelError(f"unknown class {q!r}{hint}")
