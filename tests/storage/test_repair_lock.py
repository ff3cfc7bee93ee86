"""Two `rigd recover` of one file at once: the second is told that a repair holds
the file, not a live run (``_writer_lock``'s repair byte)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rigd.storage import recover_run
from rigd.storage._writer_lock import WriterLock
from tests.storage.test_recover_guards import digest, sealed_run


def test_a_second_recover_is_told_another_recover_holds_the_file_and_a_run_is_told_apart(
    tmp_path: Path,
) -> None:
    # Was: "still being written by a live run ... stop the run (Ctrl-C on rigd run,
    # or rigd stop)" where another `rigd recover` held the lock.
    path = sealed_run(tmp_path / "run.h5", frames=3)
    before, fds = digest(path), sorted(os.listdir("/proc/self/fd"))
    repair = WriterLock(path)  # as recover_run holds it, on a descriptor of its own
    try:
        with pytest.raises(OSError, match="is being repaired by another") as raised:
            recover_run(path)
    finally:
        repair.release()
    assert str(raised.value) == (
        f"{path} is being repaired by another `rigd recover` (it holds the file); nothing "
        "was changed by this one. Wait for that one to finish: it seals the file"
    )
    writer = WriterLock(path, required=False)  # as a RunWriter holds it
    try:
        with pytest.raises(OSError, match=f"^{path} is still being written by a live run"):
            recover_run(path)
    finally:
        writer.release()
    assert recover_run(path).run_state == "complete"  # free again: left as it is
    assert digest(path) == before
    assert sorted(os.listdir("/proc/self/fd")) == fds, "a refusal left a descriptor open"
