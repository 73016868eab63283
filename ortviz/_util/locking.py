"""A file lock beside a bundle, and the atomic swap of a finished bundle into place.

Writers (``ortviz export``) take an exclusive ``flock`` on ``<bundle>.lock``, a file next to the
bundle directory (never inside it: the bundle's contents are exactly its manifest's files), for
the moment they move a finished bundle into place. Readers take no lock: the swap is one atomic
``renameat2(RENAME_EXCHANGE)`` on Linux, so the bundle path always names a complete bundle.
Where that call is missing (other systems, some file systems) the old bundle is renamed aside and
the new one renamed in: a reader opening the bundle in that instant gets a clean
``BundleError`` ("no bundle at ...") and can try again.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the swap is still rename-based
    fcntl = None


class LockTimeout(OSError):
    """Another process held the lock for too long."""


def lock_path(bundle: Path) -> Path:
    bundle = Path(bundle)
    return bundle.parent / f"{bundle.name}.lock"


@contextlib.contextmanager
def exclusive(path: Path, timeout: float = 300.0, poll: float = 0.05):
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block, and
    remove ``path`` before releasing it, so no lock file stays behind. A process that was
    waiting on the removed file sees that its inode is no longer at ``path`` and tries again."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is None:
                break
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(errno.ETIMEDOUT,
                                          f"another process holds {path} (waited {timeout:.0f}s)")
                    time.sleep(poll)
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break  # locked the file that is at path now
            except FileNotFoundError:
                pass  # the holder removed it as we waited
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # under the lock: a waiter retries on the new file
        os.close(fd)  # closing the descriptor releases the lock


class Busy(OSError):
    """Another process holds the lock (``holder``: its pid as it wrote it, or None)."""

    def __init__(self, path: Path, holder: int | None):
        super().__init__(errno.EBUSY, f"{path} is held by another process")
        self.holder = holder


@contextlib.contextmanager
def claimed(path: Path):
    """Hold an exclusive ``flock`` on ``path`` for the block, or raise :class:`Busy` at once.

    The lock file holds the holder's pid and is removed when the block ends (while still
    locked; a process that opened the old file notices the unlink and opens the new one), so
    nothing stays behind. A holder killed by SIGKILL leaves the file but not the lock: the next
    process takes it.
    """
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise Busy(path, _holder(fd)) from None
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            mine = os.fstat(fd)
            if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed it as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "x")
    except (OSError, ValueError):
        return None


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths. False where the system cannot (nothing changed)."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` (and ``root``) to disk."""
    paths = [p for p in Path(root).rglob("*") if not p.is_symlink()]
    for p in sorted(paths, key=lambda q: -len(q.parts)) + [Path(root)]:
        fsync_path(p)


def fsync_path(p: Path) -> None:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)
