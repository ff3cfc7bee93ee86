"""Opening a run file's directory beneath a root, so that no symlink leads out.

The daemon confines a pipeline's places to its data directory when the
pipeline is loaded and checks them again when a run starts
(``rigd.service``'s ``_confine`` and ``_start_places``); a recorder opens
its file later still, in its own process. ``open_beneath`` walks from the
root to the directory one component at a time, each opened with
``O_NOFOLLOW`` relative to the last (``openat``), so a symlink swapped in
after the checks is seen, not followed: it is followed only when it leads
to a place beneath the root (as the load's rules allow), and refused
otherwise. This is ``openat2``'s ``RESOLVE_BENEATH``, which Python does not
offer. ``FileBeneath`` walks there before the recorder opens its file by its
path (HDF5 opens by name) and again after, and ``confirm`` checks that the
file opened is the one in the directory so reached (same device and inode).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["FileBeneath", "open_beneath"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: At most this many symlinks on the way (as the kernel's own limit).
_MAX_LINKS = 40


def _escape(target: Path, root: Path, where: str) -> PermissionError:
    return PermissionError(
        errno.EACCES,
        f"{target} leads outside {root} (at {where}: a symlink or a file put there after "
        "the daemon checked the path); nothing was opened. Put a directory inside the "
        "data directory there and start the run again",
    )


def open_beneath(root: str | os.PathLike[str], directory: str | os.PathLike[str]) -> int:
    """Open ``directory`` (absolute, or relative to ``root``) beneath ``root``,
    creating what is missing; return its descriptor (the caller closes it).

    Raises:
        PermissionError: the path leads outside ``root`` (by its text, or by a
            symlink on the way), or passes a file where a directory should be.
        OSError: a directory cannot be opened or made (its errno kept).
    """
    root_path = Path(os.path.abspath(root))
    real_root = Path(os.path.realpath(root_path))
    target = Path(os.path.normpath(root_path / directory))  # an absolute one stays itself
    relative = os.path.relpath(target, root_path)
    if relative == ".." or relative.startswith("../"):
        raise _escape(target, root_path, str(target))
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    walked: list[str] = []
    links = 0
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        while parts:
            part = parts.pop(0)
            try:
                next_fd = _open_or_make(part, fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = str(real_root.joinpath(*walked, part))
                try:
                    link = os.readlink(part, dir_fd=fd)
                except OSError:
                    raise _escape(target, root_path, where) from None
                links += 1
                resolved = os.path.normpath(
                    link if os.path.isabs(link) else os.path.join(real_root, *walked, link)
                )
                rest = os.path.relpath(resolved, real_root)
                if links > _MAX_LINKS or rest == ".." or rest.startswith("../"):
                    raise _escape(target, root_path, where) from None
                # Start again from the root along the link's target, then the rest.
                os.close(fd)
                fd = os.open(real_root, _DIR_FLAGS)
                walked = []
                parts = [p for p in rest.split("/") if p not in ("", ".")] + parts
                continue
            os.close(fd)
            fd = next_fd
            walked.append(part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_or_make(name: str, dir_fd: int) -> int:
    if name == "..":
        raise OSError(errno.ENOTDIR, "'..' in a confined path")
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        try:
            os.mkdir(name, dir_fd=dir_fd)
        except FileExistsError:
            pass  # made meanwhile (or a symlink put there: the open below refuses it)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


class FileBeneath:
    """A run file's place beneath the root: checked (and its directory made) before
    the file is opened, and again after, to confirm the file opened is there.

    Args:
        root: the directory nothing may lead out of (the daemon's data directory).
        path: the run file (its directory is made if missing).

    Raises:
        PermissionError, OSError: as ``open_beneath``.
    """

    def __init__(self, root: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
        self.root = root
        self.path = Path(path)
        os.close(open_beneath(root, self.path.parent))

    def confirm(self, opened_fd: int) -> None:
        """Check that the file open on ``opened_fd`` (opened by its path) is the one
        in its directory beneath the root (same device and inode), walking there again.

        Raises:
            PermissionError: it is another file, or the way there now leads
                outside (a symlink swapped in while it was opened): the caller
                closes and removes what it opened.
        """
        swapped = PermissionError(
            errno.EACCES,
            f"{self.path} was opened elsewhere than in its directory beneath the data "
            "directory (a symlink swapped in while it was opened); nothing is recorded there",
        )
        try:
            fd = open_beneath(self.root, self.path.parent)
        except OSError:
            raise swapped from None
        try:
            here = os.stat(self.path.name, dir_fd=fd, follow_symlinks=False)
            opened = os.fstat(opened_fd)
        except OSError:
            raise swapped from None
        finally:
            os.close(fd)
        if (here.st_dev, here.st_ino) != (opened.st_dev, opened.st_ino):
            raise swapped
