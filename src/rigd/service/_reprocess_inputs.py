"""``rigd reprocess``'s input files: each one once.

A file given twice (``run.h5 run.h5``, or ``run.h5 ./run.h5``: one file by
two names, links followed) would be replayed twice, its second output named
``-2`` as a second run of one name is; a job refuses it instead, before
anything runs, naming the file and its places in the list. Two files of one
name in different directories are two runs, and stay so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["repeated_files"]


def repeated_files(files: Sequence[str]) -> str | None:
    """Why ``files`` (as given) name one file more than once, or None.

    One file is one resolved path (symbolic links followed), or, for files
    that exist, one inode (a hard link). The message is one line: each file
    given more than once, with its positions (from 1), and the fix.
    """
    places: dict[object, list[int]] = {}
    for index, name in enumerate(files, 1):
        path = Path(name).resolve()
        try:
            info = os.stat(path)
            key: object = (info.st_dev, info.st_ino)
        except OSError:  # not there: its row will say so; told apart by its path
            key = str(path)
        places.setdefault(key, []).append(index)
    repeated = [at for at in places.values() if len(at) > 1]
    if not repeated:
        return None
    named = "; ".join(f"{files[at[0] - 1]} (files {', '.join(map(str, at))})" for at in repeated)
    return (
        f"a file is given more than once: {named}; each file is replayed once: give it "
        "once; nothing was started"
    )
