"""A Ray address of the wrong kind, or without the cluster's token, fails within seconds in
rigd's words, naming the address and what to give instead.

One real cluster (``ray.cluster_utils.Cluster``) with token authentication
(``RAY_AUTH_MODE=token``) and a Ray Client server on an ephemeral port, started in
a child process so that this process's Ray settings stay untouched. Ray alone
took 20-30 s for each of these and ended in its own words ("Method not found!",
"ray client connection timeout", InvalidAuthToken).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rigd.actors._ray_address import check_answers

ROOT = Path(__file__).resolve().parents[2]

_CLUSTER = """
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={
    "num_cpus": 1, "include_dashboard": False, "ray_client_server_port": int(sys.argv[1])})
print(cluster.address, flush=True)
sys.stdin.readline()
cluster.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def token_cluster() -> Iterator[tuple[int, int, str]]:
    """``(gcs_port, ray_client_port, token)`` of a running cluster that needs the token."""
    token = secrets.token_hex(16)
    client_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    child = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER, str(client_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        address = child.stdout.readline().strip()
        assert address, "the cluster did not start"
        gcs_port = int(address.rsplit(":", 1)[1])
        # The Ray Client server starts beside the head; wait until it accepts.
        with grpc.insecure_channel(f"127.0.0.1:{client_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield gcs_port, client_port, token
    finally:
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.close()
        assert child.wait(timeout=60) == 0
        child.stdout.close()  # type: ignore[union-attr]
    for port in (gcs_port, client_port):  # nothing left listening
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))


@pytest.fixture
def with_token(token_cluster: tuple[int, int, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", token_cluster[2])


def test_the_right_ports_pass_the_check(
    token_cluster: tuple[int, int, str], with_token: None
) -> None:
    gcs, client, _ = token_cluster
    check_answers(f"ray:127.0.0.1:{gcs}", f"127.0.0.1:{gcs}")
    check_answers(f"ray://127.0.0.1:{client}", f"ray://127.0.0.1:{client}")


def test_the_gcs_port_given_as_ray_client_names_both_forms(
    token_cluster: tuple[int, int, str], with_token: None
) -> None:
    gcs = token_cluster[0]
    began = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        check_answers(f"ray://127.0.0.1:{gcs}", f"ray://127.0.0.1:{gcs}")
    assert time.monotonic() - began < 10
    message = str(caught.value)
    assert f"ray://127.0.0.1:{gcs} is the port of a Ray cluster's GCS" in message
    assert f"give ray:127.0.0.1:{gcs}" in message
    assert "ray://127.0.0.1:10001" in message


def _cli(argv: list[str], cwd: Path, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(cwd)  # no ~/.ray/auth_token of this machine's user
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    code = f"import sys; from rigd.service._cli import main; sys.argv = {argv!r}; main()"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,  # Ray alone: 21 s
        check=False,
    )


def test_rigd_run_given_the_ray_client_port_as_a_gcs_exits_2_within_seconds(
    tmp_path: Path, token_cluster: tuple[int, int, str]
) -> None:
    _, client, token = token_cluster
    pipeline = tmp_path / "two_pcs.yaml"
    # A file that can be used: the driver plans it before it joins the cluster.
    pipeline.write_text(
        "name: two_pcs\nactors:\n"
        "  - {name: camera, class: rigd.pipeline.SimulatedCamera, node: node_a}\n"
    )
    began = time.monotonic()

    done = _cli(
        ["rigd", "run", "--address", f"ray:127.0.0.1:{client}", str(pipeline)], tmp_path, token
    )

    assert done.returncode == 2, done.stderr[-2000:]
    assert time.monotonic() - began < 15
    assert f"ray:127.0.0.1:{client} is the port of a Ray Client server" in done.stderr
    assert f"give ray://127.0.0.1:{client}" in done.stderr
    assert "Method not found" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cluster_that_needs_a_token_says_how_to_give_it_within_seconds(
    tmp_path: Path, token_cluster: tuple[int, int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: ~20 s, then 20 lines of Ray's InvalidAuthToken. (rigd run and rigd reprocess
    # print this ConnectionError as the other addresses' here: exit 2.)
    gcs = token_cluster[0]
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token of this machine's user
    began = time.monotonic()
    with pytest.raises(ConnectionError) as caught:
        check_answers(f"ray:127.0.0.1:{gcs}", f"127.0.0.1:{gcs}")
    assert time.monotonic() - began < 10
    message = str(caught.value)
    assert f"the Ray cluster at ray:127.0.0.1:{gcs} uses token authentication" in message
    assert "this process has no token" in message
    assert "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<token>" in message
    assert "ray get-auth-token" in message


def test_a_wrong_token_is_named_with_where_it_came_from(
    token_cluster: tuple[int, int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gcs = token_cluster[0]
    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 32)
    with pytest.raises(ConnectionError, match=r"refuses the token from \$RAY_AUTH_TOKEN"):
        check_answers(f"ray:127.0.0.1:{gcs}", f"127.0.0.1:{gcs}")


def test_rigd_reprocess_given_the_gcs_port_as_ray_client_exits_2_within_seconds(
    tmp_path: Path, token_cluster: tuple[int, int, str]
) -> None:
    from tests.service.test_reprocess import PIPELINE, run_file

    gcs, _, token = token_cluster
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    run_file(tmp_path / "run.h5", 0, 3)
    address = f"ray://127.0.0.1:{gcs}"
    began = time.monotonic()

    argv = ["rigd", "reprocess", str(pipeline), "run.h5", "--address", address, "--out", "out"]
    done = _cli(argv, tmp_path, token)

    assert done.returncode == 2, done.stderr[-2000:]
    assert time.monotonic() - began < 15
    assert f"{address} is the port of a Ray cluster's GCS" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
