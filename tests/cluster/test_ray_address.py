"""A Ray address where no Ray cluster answers fails at once, naming the address and the fix.

No cluster is started here: these are the addresses a user gets wrong (a port
nothing listens on, the dashboard's port). The real GCS passing the same check
is every test in test_cluster.py (its module joins through ``rigd.init``).
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigd.actors._ray_address import RAY_CLIENT_PORT, check_answers, host_and_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A tcp port bound here but not listening: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture
def http_port() -> Iterator[int]:
    """A real HTTP/1 server (as Ray's dashboard is) on an ephemeral port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_rigd_run_with_an_address_where_nothing_listens_exits_2_within_seconds(
    tmp_path: Path, closed_port: int
) -> None:
    pipeline = tmp_path / "two_pcs.yaml"
    # A file that can be used: the driver plans it before it joins the cluster.
    pipeline.write_text(
        "name: two_pcs\nactors:\n"
        "  - {name: camera, class: rigd.pipeline.SimulatedCamera, node: node_a}\n"
    )
    address = f"ray:127.0.0.1:{closed_port}"
    began = time.monotonic()

    done = subprocess.run(
        [sys.executable, "-m", "rigd", "run", "--address", address, str(pipeline)],
        capture_output=True,
        text=True,
        timeout=60,  # Ray alone retried for minutes
        cwd=tmp_path,
    )

    assert done.returncode == 2, done.stderr[-2000:]
    assert time.monotonic() - began < 15
    assert f"no Ray cluster at {address}" in done.stderr
    assert "connection refused" in done.stderr
    assert "ray start --head" in done.stderr
    assert "ray:HOST:6379" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_that_answers_but_is_no_ray_server_is_named_as_such(http_port: int) -> None:
    for target in (f"127.0.0.1:{http_port}", f"ray://127.0.0.1:{http_port}"):
        with pytest.raises(ConnectionError, match=r"answers, but not as Ray's GCS.*dashboard"):
            check_answers(f"ray:{target}", target, timeout=5.0)


def test_ray_client_refused_names_the_address(closed_port: int) -> None:
    with pytest.raises(ConnectionError, match=rf"ray://127.0.0.1:{closed_port} \(127"):
        check_answers(f"ray://127.0.0.1:{closed_port}", f"ray://127.0.0.1:{closed_port}")


def test_an_unknown_host_is_named() -> None:
    with pytest.raises(ConnectionError, match=r"no host 'no-such-head.invalid'"):
        check_answers("ray:no-such-head.invalid:6379", "no-such-head.invalid:6379")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("10.0.0.5:6379", ("10.0.0.5", 6379)),
        ("ray://head:10001", ("head", 10001)),
        ("ray://head", ("head", RAY_CLIENT_PORT)),
        ("[::1]:6379", ("::1", 6379)),
        ("auto", None),
        ("head", None),
        ("head:0", None),
        ("head:port", None),
    ],
)
def test_addresses_are_read_as_ray_reads_them(
    target: str, expected: tuple[str, int] | None
) -> None:
    assert host_and_port(target) == expected
