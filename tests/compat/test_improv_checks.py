"""``rigd convert`` checks what the improv config names: a connection to an
actor it does not define is refused (file, line, key, the names it defines),
and so is an actor whose module cannot be found, as ``rigd run`` and ``rigd
load`` refuse its class; the module is looked for, never imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rigd.config import PipelineFileError, improv_pipeline_text
from rigd.service import main


def convert(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(["convert", str(path)])
    out, err = capsys.readouterr()
    return int(ended.value.code or 0), out, err


def test_rigd_convert_refuses_a_connection_to_an_actor_the_config_does_not_define(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rig.yaml"
    path.write_text(
        "actors:\n"
        "  Gen: {package: tests.compat.improv_demo.sample_generator, class: Generator}\n"
        "connections:\n"
        "  Gen.q_out: [Proc.q_in]\n"
    )
    # Before, it printed the pipeline file and exited 0.
    status, out, err = convert(path, capsys)

    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"rigd convert: {path} has 1 problem(s):",
        f"  {path}, line 4, connections.Gen.q_out: 'Proc.q_in' names actor 'Proc', which is "
        "not in actors (Gen); define it under actors, or correct the name",
    ]
    # rigd run and rigd load read improv's files through the same conversion.
    with pytest.raises(PipelineFileError, match="names actor 'Proc', which is not in actors"):
        improv_pipeline_text(str(path), path.read_text())


def test_rigd_convert_refuses_an_actor_whose_module_cannot_be_found_without_importing_any(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # modules are looked for here first, as rigd run does
    (tmp_path / "my_rig_actors_q4.py").write_text("raise SystemExit('imported')\n")
    path = tmp_path / "rig.yaml"
    path.write_text(
        "actors:\n"
        "  Gen:\n"
        "    package: nosuch.pkg\n"
        "    class: Generator\n"
        "  Proc:\n"
        "    package: my_rig_actors_q4\n"
        "    class: Processor\n"
        "connections:\n"
        "  Gen.q_out: [Proc.q_in]\n"
    )

    status, out, err = convert(path, capsys)

    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"rigd convert: {path} has 1 problem(s):",
        f"  {path}, line 3, actors.Gen.package: module 'nosuch.pkg' cannot be found "
        "(ModuleNotFoundError: No module named 'nosuch'); rigd run and rigd load refuse "
        "its class too: run from the directory that holds it, install it, or correct package",
    ]
    assert "my_rig_actors_q4" not in sys.modules  # found, not run
    assert str(tmp_path) not in sys.path  # the current directory was added for the look only
