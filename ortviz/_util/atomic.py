"""Writing a file so that no partial file is ever seen: the one atomic writer.

The content goes to a hidden temporary name beside the file (``.NAME.<8 hex>.tmp``, so a name
must leave :data:`EXTRA` bytes of room), is flushed to disk, and is renamed over the file; on any
failure or exception, a catchable signal included, the temporary file is removed. Images,
GIFs, sidecars and the staged files of an output set (``outputset``) are all written here.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

EXTRA = len("..") + 8 + len(".tmp")  # what a temporary or set-aside name adds to a file name


def hidden(path: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name beside ``path``: ``.NAME.<8 hex>.<kind>`` (kind: tmp or old)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{kind}")


def write_temp(path: Path, write: Callable, text: bool = False) -> Path:
    """Call ``write(file_object)`` on a new temporary file beside ``path``, flush it to disk and
    give it the old file's mode (else 0644); return its name. Nothing is left on failure."""
    path = Path(path)
    tmp = hidden(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, write: Callable, text: bool = False) -> None:
    """Write ``path`` whole or not at all (see the module's note)."""
    tmp = write_temp(path, write, text=text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
