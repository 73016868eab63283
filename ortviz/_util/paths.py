"""What a path given on the command line names, in one line, before anything opens it.

Opening a FIFO blocks forever, a device reads forever (``/dev/zero``) or nothing (``/dev/null``),
a ``/proc`` or ``/sys`` file says it is empty but is not, and a link loop or a dangling link
looks like a missing file. :func:`odd` names each of these so that images, bundles and outputs
refuse them with their own line instead of a hang or a misleading "no such file".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def kind(mode: int) -> str | None:
    """The words for a special file's type, or None for a regular file or directory."""
    return KINDS.get(stat.S_IFMT(mode))


def odd(path, what: str, directory: bool = False) -> str | None:
    """Why ``path`` cannot be ``what`` (e.g. ``"an image file"``; a directory if ``directory``), or None.

    Named: a link loop, a dangling link, a missing path, no permission to look, a FIFO, device or
    socket, a file of the kernel's ``/proc`` or ``/sys``, a directory given as a file and a file
    given as a directory. The message starts with the path and is one line.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{p}: is a symbolic link loop"
        if exc.errno == errno.ENOENT and os.path.islink(p):
            return f"{p}: is a link to {os.readlink(p)}, which does not exist"
        if exc.errno == errno.ENOENT:
            return f"{p}: no such {'directory' if directory else 'file'}"
        if exc.errno == errno.ENOTDIR:
            return f"{p}: a part of the path is not a directory"
        if exc.errno == errno.ENAMETOOLONG:
            return f"{p}: the name is too long"
        return f"{p}: cannot look at it: {exc.strerror}"
    special = kind(st.st_mode)
    if special:
        return f"{p}: is {special}, not {what}"
    real = os.path.realpath(p)
    for fs in ("/proc", "/sys"):
        if real == fs or real.startswith(fs + "/"):
            return f"{p}: is a file of the kernel's {fs}, not {what}"
    if not directory and stat.S_ISDIR(st.st_mode):
        return f"{p}: is a directory, not {what}"
    if directory and not stat.S_ISDIR(st.st_mode):
        return f"{p}: is a file, not {what}"
    return None


def files_under(root: Path) -> set[str]:
    """The relative names of every file and link under ``root``, at any depth; directories are
    entered (never through a link), not listed. Walked with a stack, not recursion: a folder
    nested 1,200 levels deep is walked like any other (``Path.rglob`` hit the recursion limit)."""
    found: set[str] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as entries:
            for e in entries:
                name = os.path.join(rel, e.name) if rel else e.name
                if e.is_dir(follow_symlinks=False):
                    stack.append(name)
                elif e.is_file() or e.is_symlink():
                    found.add(name)
    return found
