"""A program's module is refused at planning, also one installed while the process runs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from rigd.config import PipelineFileError
from rigd.pipeline import plan_pipeline


def test_a_console_script_installed_after_a_plan_is_refused_at_the_next(tmp_path: Path) -> None:
    # A distribution directory on sys.path, as pip's install leaves one: the
    # planner keeps the installed console scripts while no sys.path directory
    # changes, so an install between two plans must still be seen.
    site = tmp_path / "site"
    site.mkdir()
    module = f"rigdtool_{tmp_path.name.replace('-', '_')}"
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        textwrap.dedent(
            f"""
            name: tool
            actors:
              - {{name: tool, class: {module}.Tool}}
            """
        )
    )
    sys.path.insert(0, str(site))
    try:
        with pytest.raises(PipelineFileError) as before:
            plan_pipeline(pipeline)
        assert "cannot be imported" in str(before.value)
        assert "console script" not in str(before.value)
        dist = site / "rigdtool-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rigdtool\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[console_scripts]\nrigdtool = {module}:main\n")
        with pytest.raises(PipelineFileError) as after:
            plan_pipeline(pipeline)
        assert "is a program's entry point (a console script)" in str(after.value)
    finally:
        sys.path.remove(str(site))


def test_a_console_scripts_module_already_imported_here_is_not_refused(tmp_path: Path) -> None:
    # Importing it again runs nothing: it was imported here as a library, and
    # the planner does not read every distribution's entry points for it.
    site = tmp_path / "site"
    site.mkdir()
    module = f"rigdlib_{tmp_path.name.replace('-', '_')}"
    (site / f"{module}.py").write_text(
        "import rigd\n\n\nclass Tool(rigd.Actor):\n    def run_step(self):\n        pass\n"
    )
    dist = site / "rigdlib-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rigdlib\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[console_scripts]\nrigdlib = {module}:main\n")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"name: tool\nactors:\n  - {{name: tool, class: {module}.Tool}}\n")
    sys.path.insert(0, str(site))
    try:
        with pytest.raises(PipelineFileError, match="a program's entry point"):
            plan_pipeline(pipeline)
        assert module not in sys.modules  # refused before it was imported
        __import__(module)

        plan = plan_pipeline(pipeline)

        assert [actor.name for actor in plan.actors] == ["tool"]
    finally:
        sys.path.remove(str(site))
        sys.modules.pop(module, None)
