"""Opening a run file's directory beneath the data directory: a symlink swapped
in after the daemon's checks is seen, never followed out (real files, real links)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rigd.pipeline._confined import FileBeneath, open_beneath


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


def test_missing_directories_are_made_beneath_the_root(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    fd = open_beneath(root, root / "rigd-data" / "day1")
    try:
        assert os.path.samefile(f"/proc/self/fd/{fd}", root / "rigd-data" / "day1")
    finally:
        os.close(fd)


def test_a_symlink_that_stays_beneath_the_root_is_followed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "big").mkdir()
    (root / "rigd-data").symlink_to("big")
    fd = open_beneath(root, "rigd-data")
    try:
        assert os.path.samefile(f"/proc/self/fd/{fd}", root / "big")
    finally:
        os.close(fd)


@pytest.mark.parametrize("link", ["absolute", "relative", "deeper"])
def test_a_symlink_out_of_the_root_is_refused_and_nothing_is_made_outside(
    tree: tuple[Path, Path], link: str
) -> None:
    root, outside = tree
    if link == "absolute":
        (root / "rigd-data").symlink_to(outside)
    elif link == "relative":
        (root / "rigd-data").symlink_to("../outside")
    else:  # a link inside that leads to a link out
        (root / "rigd-data").symlink_to("hop")
        (root / "hop").symlink_to(outside)
    with pytest.raises(PermissionError, match="leads outside") as refused:
        open_beneath(root, root / "rigd-data" / "day1")
    assert "Put a directory inside the data directory there" in str(refused.value)
    assert os.listdir(outside) == []


def test_a_path_outside_by_its_text_or_through_a_file_is_refused(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    with pytest.raises(PermissionError, match="leads outside"):
        open_beneath(root, outside)
    (root / "plain").write_text("a file, not a directory")
    with pytest.raises(PermissionError, match="leads outside"):
        open_beneath(root, root / "plain" / "day1")


def test_a_swap_while_the_file_is_opened_is_caught_by_confirm(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "rigd-data").mkdir()
    path = root / "rigd-data" / "run.h5"
    beneath = FileBeneath(root, path)
    # Between the walk and the writer's open by its path, the directory is
    # swapped for a link out: the writer's open lands outside.
    (root / "rigd-data").rename(root / "moved")
    (root / "rigd-data").symlink_to(outside)
    with open(path, "xb") as opened:
        assert (outside / "run.h5").exists()
        with pytest.raises(PermissionError, match="swapped in"):
            beneath.confirm(opened.fileno())
        # Swapped back before the confirm: the file open is still not the one there.
        (root / "rigd-data").unlink()
        (root / "moved").rename(root / "rigd-data")
        (root / "rigd-data" / "run.h5").write_bytes(b"another file")
        with pytest.raises(PermissionError, match="swapped in"):
            beneath.confirm(opened.fileno())
    # Not swapped: the file open is the one beneath the root.
    other = root / "rigd-data" / "other.h5"
    beneath = FileBeneath(root, other)
    with open(other, "xb") as opened:
        beneath.confirm(opened.fileno())
