"""Class labels: reading label files, and finding a class by index or by name."""

from __future__ import annotations

import re
from pathlib import Path

from ortviz.errors import did_you_mean


class LabelError(ValueError):
    pass


def is_index(text: str) -> bool:
    """``text`` is a whole number written in ASCII digits: an index. ``str.isdigit`` alone also
    takes ``'²'`` or ``'①'``, which ``int()`` refuses; those are names (and unknown ones)."""
    return text.isascii() and text.isdigit()


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
        if k == 0 and len(parts) >= 3 and not is_index(parts[0].strip()):
            continue  # a TSV header
        labels.append(parts[-1].strip() if len(parts) >= 3 else line.strip())
    if not labels:
        raise LabelError(f"labels file {path} is empty")
    return labels


def _names(label: str) -> list[str]:
    return [n.strip().lower() for n in label.split(",") if n.strip()]


def shared_names(labels: list[str]) -> dict[str, list[int]]:
    """Names that more than one class carries (ImageNet: ``crane`` is 134 and 517)."""
    by_name: dict[str, list[int]] = {}
    for i, l in enumerate(labels):
        for n in _names(l):
            by_name.setdefault(n, []).append(i)
    return {n: ids for n, ids in by_name.items() if len(ids) > 1}


def describe(labels: list[str], i: int) -> str:
    """``index (label)``, and for a class that shares a name with another, its neighbours in
    the label order, which tell them apart where the order follows a hierarchy (ImageNet's:
    134 crane sits between bittern and limpkin, the birds; 517 crane between cradle and crash
    helmet, the things)."""
    text = f"{i} ({labels[i]})"
    shared = shared_names(labels)
    if not any(n in shared for n in _names(labels[i])):
        return text
    near = [labels[j].split(",")[0].strip() for j in (i - 1, i + 1) if 0 <= j < len(labels)]
    return f"{text} next to {' and '.join(near)}"


def search(labels: list[str], text: str) -> list[int]:
    """Classes one of whose names contains ``text`` (case-insensitive; ``_`` as a space)."""
    q = text.strip().lower().replace("_", " ")
    return [i for i, l in enumerate(labels) if any(q in n for n in _names(l))]


NEIGHBOURS = ("classes that share a name are told apart by their neighbours in the label "
              "order")


def find_class(labels: list[str], query: str | int) -> int:
    """A class index from an index (``285``) or a name (``Egyptian cat``, ``flamingo``).

    A name matches a class when it equals one of the class's comma-separated names, ignoring
    case (two classes of one name are refused, each with its neighbours in the label order);
    failing that, when it is a whole word of exactly one class's names (``shuttle``: space
    shuttle); failing that, a part of exactly one class's names. Several classes are refused
    with "did you mean", whole-word matches first (``cat``: the five domestic cats before
    bullfrog's *catesbeiana*).
    """
    q = str(query).strip()
    if is_index(q.lstrip("-")):
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
                         "; ".join(describe(labels, i) for i in exact[:6]) +
                         f"; give the index ({NEIGHBOURS})")
    words = [i for i, l in enumerate(labels) if any(_has_word(n, ql) for n in _names(l))]
    part = [i for i, l in enumerate(labels) if any(ql in n for n in _names(l))]
    for found in (words, part):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise LabelError(_did_you_mean(labels, q, words, [i for i in part if i not in words]))
    every = {n: i for i, l in enumerate(labels) for n in _names(l)}
    hint = did_you_mean(ql, every, n=4, show=lambda n: f"{n!r} ({every[n]})")
    raise LabelError(f"unknown class {q!r}" + (f"; {hint}" if hint else ""))


def _has_word(name: str, word: str) -> bool:
    """``word`` (one or more words) in ``name`` with no letter or digit touching either end."""
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", name) is not None


def _did_you_mean(labels, q: str, words: list[int], others: list[int], n: int = 6) -> str:
    """``class name 'cat' is ambiguous; did you mean 281 (tabby, tabby cat), ...?``: the
    classes that have ``q`` as a word first, then those that only contain it."""
    shown = (words + others)[:n]
    more = len(words) + len(others) - len(shown)
    text = (f"class name {q!r} is ambiguous; did you mean "
            + ", ".join(f"{i} ({labels[i]})" for i in shown) + "?")
    if more:
        text += f" ({more} more: ortviz labels --search {q!r})"
    return text + " Give the index or a full name."
