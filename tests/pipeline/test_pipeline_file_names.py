"""A name over 64 characters is refused in the file's words: file, line, key,
its length, why names are short, and the fix (not pydantic's "String should
have at most 64 characters")."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.config import PipelineFileError, load_pipeline


def test_an_actor_name_of_300_characters_is_refused_with_its_length_and_the_fix(
    tmp_path: Path,
) -> None:
    name = "a" * 150 + "b" * 150
    path = tmp_path / "long.yaml"
    path.write_text(
        "name: long\n"
        "actors:\n"
        f"  - {{name: {name}, class: rigd.pipeline.SimulatedCamera, node: {'n' * 65}}}\n"
    )
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline(path)

    assert caught.value.problems == [
        f"{path}, line 3, actors[0].name: name 'aaaaaaaaaaaaaaaaaaa...bbbbbbbbbbbbbbbbbb' is "
        "300 characters; a name is at most 64 (names go into ring and shared-memory segment "
        "names, 255 bytes at most): shorten it, e.g. 'camera'",
        f"{path}, line 3, actors[0].node: node 'nnnnnnnnnnnnnnnnnnn...nnnnnnnnnnnnnnnnnn' is "
        "65 characters; a name is at most 64 (names go into ring and shared-memory segment "
        "names, 255 bytes at most): shorten it, e.g. 'camera'",
    ]
    assert "String should have" not in str(caught.value)
