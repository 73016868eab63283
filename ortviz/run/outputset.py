"""The files one run writes (its output set): resolved and checked before the first iteration,
locked while the run lasts, and replaced whole.

A result at ``NAME.png`` is the image and ``NAME.png.json`` (the sidecar); with snapshots also
``NAME.gif``, ``NAME-sheet.png`` and the folder ``NAME-frames/``; for a technique that shows its
photo (feature inversion) ``NAME-photo.png``, the photo as the technique saw it. Before any work :func:`check`
refuses, each in one line: a path that is the input photo (or a link to it), one inside the
bundle, a directory or special file in the way of a file (or a file in the way of the frames
folder), a side file (sidecar, GIF, sheet, frames) that the old sidecar does not claim as
its set's, a frames folder holding files ortviz did not write, a name too long once the
temporary suffix is added, and a directory that cannot be written. :func:`claim` then takes a
lock per result (``.NAME.png.lock``, removed at the end): a second run into the same output
is refused at once, naming the first one's pid.

:func:`replace` writes every new file to a hidden temporary name first; only when all are
written does it move the old files aside and the new ones in (sidecar last), and if a move
fails it puts the old ones back. So a failure leaves the old set whole, or the new set whole.
Members of the old set that the new one lacks (its GIF, sheet and frames, as its sidecar lists
them) are removed with it: no stale frames describe another picture.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ortviz._util import locking, paths
from ortviz._util.atomic import EXTRA, hidden, write_temp
from ortviz.errors import UsageError

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
FRAME = re.compile(r"\d{4}\.png")


class OutputError(UsageError):
    """An output set that cannot be written; one line, found before any work."""


@dataclass(frozen=True)
class Files:
    """The paths of one result's files."""

    image: Path
    snapshots: bool = False
    photo: bool = False

    @property
    def sidecar(self) -> Path:
        return self.image.with_name(self.image.name + ".json")

    @property
    def gif(self) -> Path:
        return self.image.with_suffix(".gif")

    @property
    def sheet(self) -> Path:
        return self.image.with_name(self.image.stem + "-sheet.png")

    @property
    def frames(self) -> Path:
        return self.image.with_name(self.image.stem + "-frames")

    @property
    def photo_path(self) -> Path:
        return self.image.with_name(self.image.stem + "-photo.png")

    def members(self) -> list[tuple[str, Path]]:
        """(what, path) for every path of the set; the frames folder is the one directory."""
        out = [("image", self.image), ("sidecar", self.sidecar)]
        if self.snapshots:
            out += [("GIF", self.gif), ("contact sheet", self.sheet), ("frames folder", self.frames)]
        if self.photo:
            out.append(("photo", self.photo_path))
        return out

    def old_sidecar(self) -> dict | None:
        """The sidecar already at this set's path if ortviz wrote it (a JSON object naming its
        technique); None otherwise. Only a regular file is read: a FIFO would block."""
        p = self.sidecar
        try:
            if p.is_symlink() or not p.is_file() or p.stat().st_size > 1 << 20:
                return None
            old = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        return old if isinstance(old, dict) and isinstance(old.get("technique"), str) else None

    def listed(self, old: dict | None = None) -> set[str]:
        """The side-file names the old sidecar (``old``, read when not given) claims as its
        set's (snapshots, the photo)."""
        old = (self.old_sidecar() or {}) if old is None else old
        names = old.get("snapshots")
        out = {v for k, v in names.items() if k in ("gif", "sheet", "frames") and isinstance(v, str)} \
            if isinstance(names, dict) else set()
        if isinstance(old.get("photo"), str):
            out.add(old["photo"])
        return out

    def stale(self) -> list[Path]:
        """Files of the old set (as its sidecar names them: snapshots, the photo) that this set
        will not write; they are removed when it is written."""
        old = self.old_sidecar() or {}  # read once
        listed = set() if self.snapshots else self.listed(old) - {old.get("photo")}
        if not self.photo and isinstance(old.get("photo"), str):
            listed.add(old["photo"])

        def plain(p: Path, folder: bool) -> bool:  # only what ortviz writes: never a link
            return p.name in listed and not p.is_symlink() and (p.is_dir() if folder else p.is_file())

        return [p for p in (self.gif, self.sheet, self.photo_path) if plain(p, False)] + \
            [self.frames] * plain(self.frames, True)


def plan(out: Path, targets: list, snapshots: bool, photo: bool = False) -> list[Files]:
    """The files of each result: ``out`` for one, ``STEM-TARGET.EXT`` for several targets."""
    return [Files(image_for(out, t, len(targets)), snapshots, photo) for t in targets or [None]]


def image_for(out: Path, target, n_targets: int) -> Path:
    out = Path(out)
    return out if n_targets <= 1 else out.with_name(f"{out.stem}-{target}{out.suffix}")


def check_suffix(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise OutputError(f"output {out} must end in .png, .jpg, .webp, .bmp or .tif")


def _real(p: Path) -> str:
    """The real path of ``p``, whether it exists or not (its parent's real path + its name)."""
    return os.path.realpath(p)


def _inside(p: str, folder: str) -> bool:
    return p == folder or p.startswith(folder.rstrip("/") + "/")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _existing_ancestor(p: Path) -> Path:
    for parent in p.absolute().parents:
        if os.path.lexists(parent):
            return parent
    return Path("/")


def check(sets: list[Files], inputs: list[Path] = (), bundle: Path | None = None) -> None:
    """Refuse, in one line, any output set that cannot be written whole (see the module)."""
    seen: dict[str, str] = {}
    real_inputs = [(Path(i), _real(Path(i))) for i in inputs if i is not None and os.path.exists(i)]
    real_bundle = _real(Path(bundle)) if bundle is not None else None
    for files in sets:
        check_suffix(files.image)
        for what, p in files.members() + [("old snapshot", s) for s in files.stale()]:
            real = _real(p)
            if real in seen:
                raise OutputError(f"output {p}: the {what} and the {seen[real]} would be the same file")
            seen[real] = what
            for given, real_in in real_inputs:
                if real == real_in or (os.path.exists(p) and os.path.samefile(p, given)):
                    raise OutputError(f"output {p}: the {what} would replace the input {given}; "
                                      "choose another -o")
                if what == "frames folder" and _inside(real_in, real):
                    raise OutputError(f"output {p}: the frames folder would replace the input "
                                      f"{given}, which lies inside it; choose another -o")
            if real_bundle is not None and (_inside(real, real_bundle) or _inside(real_bundle, real)):
                raise OutputError(f"output {p}: the {what} would lie inside the bundle {bundle}; "
                                  "choose another -o")
            if what != "old snapshot" or p == files.frames:
                _check_place(what, p, directory=p == files.frames)
            _check_owned(files, what, p)
        _check_folder(files.image)


def _check_owned(files: Files, what: str, p: Path) -> None:
    """A side file the user did not name (sidecar, GIF, sheet, frames) is replaced only if an
    earlier run of ortviz wrote it: the old sidecar lists it."""
    if what in ("image", "old snapshot") or not os.path.lexists(p):
        return
    if what == "sidecar":
        if files.old_sidecar() is None:
            raise OutputError(f"output {p}: the sidecar would replace a file that is not an "
                              "ortviz sidecar; move it or choose another -o")
        return
    if p.name not in files.listed():
        raise OutputError(f"output {p}: the {what} would replace a file ortviz did not write "
                          f"(the sidecar {files.sidecar.name} does not list it); move it or "
                          "choose another -o")


def _check_place(what: str, p: Path, directory: bool) -> None:
    name = os.fsencode(p.name)
    limit = _name_max(_existing_ancestor(p))
    if len(name) + EXTRA > limit:
        raise OutputError(f"output {p}: the {what}'s name is {len(name)} bytes; with the "
                          f"temporary suffix at most {limit - EXTRA} fit")
    if len(os.fsencode(str(p.absolute()))) + EXTRA >= 4096:
        raise OutputError(f"output {p}: the {what}'s path is too long")
    if not os.path.lexists(p):
        return
    try:
        st = os.stat(p)
    except OSError:
        why = paths.odd(p, "a file ortviz can replace", directory)
        raise OutputError(f"output {why}") from None
    special = paths.kind(st.st_mode)
    if special:
        raise OutputError(f"output {p}: {special} is in the way of the {what}")
    if not directory and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"output {p}: a directory is in the way of the {what}")
    if directory:
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"output {p}: a file is in the way of the {what}")
        foreign = sorted(q.name for q in p.iterdir() if not (FRAME.fullmatch(q.name) and q.is_file()
                                                             and not q.is_symlink()))
        if foreign:
            raise OutputError(f"output {p}: the {what} holds files ortviz did not write "
                              f"({', '.join(foreign[:3])}); move them or choose another -o")


def _check_folder(image: Path) -> None:
    """The folder of ``image`` exists and can be written, or can be made."""
    check_folder(image.parent, f"output {image}", image)


def check_folder(folder: Path, what: str, probe: Path) -> None:
    """``folder`` exists and can be written, or can be made (its nearest existing ancestor can
    be written); a refusal starts with ``what``. A read-only file system says ``permission
    denied`` (``access`` refuses writes there even to root); in an existing folder a temporary
    file named after ``probe`` is written and removed."""
    anc = folder if os.path.lexists(folder) else _existing_ancestor(folder)
    if not anc.is_dir():
        raise OutputError(f"{what}: {anc} is not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: cannot write in {anc} (permission denied)")
    if anc == folder or anc.absolute() == folder.absolute():
        try:  # a read-only file system or a full inode table shows here, not after the run
            write_temp(probe, lambda f: None).unlink()
        except OSError as exc:
            raise OutputError(f"{what}: cannot write in {folder}: {exc.strerror}") from None


@contextlib.contextmanager
def claim(sets: list[Files]):
    """Make the output folders and lock every result of the run (see the module) for the block.
    Folders made here that are still empty at the end are removed again."""
    made: list[Path] = []
    with contextlib.ExitStack() as stack:
        try:
            for files in sets:
                made += make_folder(files.image.parent)
                try:
                    stack.enter_context(locking.claimed(_lock(files.image)))
                except locking.Busy as exc:
                    who = f" (pid {exc.holder})" if exc.holder else ""
                    raise OutputError(f"output {files.image}: another run is writing it now{who}; "
                                      "wait for it or choose another -o") from None
                except OSError as exc:
                    raise OutputError(f"output {files.image}: cannot lock it: {exc.strerror}") from None
            yield
        finally:
            stack.close()
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty


def _lock(image: Path) -> Path:
    return image.with_name(f".{image.name}.lock")


def make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents (those made, outermost first); one line if not."""
    missing = []
    for p in [folder, *folder.parents]:
        if os.path.lexists(p):
            break
        missing.append(p)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output folder {folder}: cannot make it: {exc.strerror}") from None
    return list(reversed(missing))


Writer = Callable  # write(file_object) for one file


def replace(files: Files, writers: dict[str, Writer], frames: list[Writer],
            sidecar: Writer) -> list[Path]:
    """Write the set whole (see the module): ``writers`` by member name (image, GIF, contact
    sheet), one writer per frame, then the sidecar. Returns the paths written."""
    staged: list[tuple[Path, Path]] = []  # (final, temporary)
    try:
        for what, p in files.members():
            if what == "frames folder":
                tmp = hidden(p)
                tmp.mkdir()
                staged.append((p, tmp))
                for k, write in enumerate(frames):
                    final = tmp / f"{k:04d}.png"
                    os.replace(write_temp(final, write), final)
            elif what == "sidecar":
                continue
            else:
                staged.append((p, write_temp(p, writers[what])))
        staged.append((files.sidecar, write_temp(files.sidecar, sidecar, text=True)))
    except BaseException as exc:
        for _, tmp in staged:
            _remove(tmp)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"cannot write {exc.filename or files.image}: "
                          f"{exc.strerror}; the previous files at {files.image} are unchanged") from None
        raise
    _commit(staged, files.stale())
    return [final for final, _ in staged]


def _commit(staged: list[tuple[Path, Path]], stale: list[Path]) -> None:
    aside: list[tuple[Path, Path]] = []   # (final, old file moved aside)
    placed: list[Path] = []
    try:
        for final in [f for f, _ in staged] + stale:
            if os.path.lexists(final):
                old = hidden(final, "old")
                os.rename(final, old)
                aside.append((final, old))
        for final, tmp in staged:
            os.rename(tmp, final)
            placed.append(final)
    except BaseException as exc:
        for final in placed:
            _remove(final)
        for final, old in aside:
            with contextlib.suppress(OSError):
                os.rename(old, final)
        for _, tmp in staged:
            _remove(tmp)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"cannot put {exc.filename} in place: {exc.strerror}; "
                          "the previous files are back as they were") from None
        raise
    for _, old in aside:
        _remove(old)


def _remove(p: Path) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
