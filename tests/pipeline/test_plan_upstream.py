"""Planning names the actor whose outputs it cannot describe, not every actor after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.config import PipelineFileError
from rigd.pipeline import plan_pipeline


def test_an_actor_downstream_of_one_that_failed_is_not_called_unlinked(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    absent = tmp_path / "absent.h5"
    path.write_text(
        "name: p\n"
        "actors:\n"
        f"  - {{name: playback, class: rigd.pipeline.FilePlayback, options: {{path: {absent}}}}}\n"
        "  - {name: dff, class: rigd.pipeline.DeltaFOverF}\n"
        "  - {name: recorder, class: rigd.pipeline.HDF5Recorder}\n"
        "links:\n"
        "  - {link: playback.frames -> dff.frames}\n"
        "  - {link: dff.dff -> recorder.dff}\n"
    )

    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)

    text = str(info.value)
    assert "line 3" in text
    assert "absent.h5" in text
    assert "dff:" not in text  # no cascade after it
    assert "recorder:" not in text
