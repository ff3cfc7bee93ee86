"""The CLI's ``--address`` names the forms a user gives (the README's), not
``rigd.init``'s (None, 'auto', another process's session address)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.service import main

PIPELINE = (
    "name: two\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera, node: a,"
    " options: {shape: [8, 8], n_frames: 4}}\n"
)


@pytest.mark.parametrize("command", ["run", "reprocess"])
def test_an_address_that_is_no_ray_form_is_refused_naming_the_forms_to_give(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "two.yaml").write_text(PIPELINE)
    args = [command, "--address", "bogus://x", str(tmp_path / "two.yaml")]
    if command == "reprocess":
        args += [str(tmp_path / "run.h5"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as ended:
        main(args)
    out, err = capsys.readouterr()

    assert (ended.value.code, out) == (2, "")
    (line,) = err.splitlines()
    # Was: "address must be None (embedded), 'auto' (the local daemon) or the
    # address another process's rigd.init() returned".
    assert line == (
        f"rigd {command}: --address 'bogus://x' is not a Ray cluster's address; give "
        "ray://HOST:10001 (Ray Client to a remote cluster), ray:HOST:6379 (a cluster's GCS "
        "address), ray:auto or ray (the Ray cluster this machine is in) (see Clusters in "
        "the README); nothing was started"
    )
    assert "rigd.init" not in line
    assert not (tmp_path / "out").exists()


def test_the_ray_forms_are_left_to_rigd_init() -> None:
    from rigd.service._cli_address import not_a_cluster_address

    for address in ("ray", "ray:auto", "ray:head:6379", "ray://head:10001"):
        assert not_a_cluster_address(address) is None
    for address in ("auto", "head:6379", "rays://head:1", "", "/tmp/rigd-session"):
        assert not_a_cluster_address(address) is not None, address
