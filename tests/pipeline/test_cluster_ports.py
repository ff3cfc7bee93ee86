"""The ports a cluster run's bridges bind: ephemeral ones, or a configured range."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from rigd.pipeline._cluster_ports import check_range, free_ports
from rigd.service._run_cluster import parse_port_range


def test_ephemeral_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))


def test_a_range_gives_its_first_free_ports_and_skips_a_taken_one() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        first = taken.getsockname()[1]
        ports = free_ports(2, (first, min(first + 50, 65535)))
    assert first not in ports
    assert all(first < port <= first + 50 for port in ports)


def test_a_range_without_enough_free_ports_says_so_and_how_to_fix_it() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"2 free tcp ports in {port}-{port}.*widen"):
            free_ports(2, (port, port))


@pytest.mark.parametrize("bad", [(5, 3), (0, 10), (1, 70000), (1,), "47100-47199", (1.0, 2)])
def test_a_bad_port_range_is_refused_with_what_is_expected(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"port_range must be \(first, last\)"):
        check_range(bad)


@pytest.mark.parametrize("text", ["47100", "47199-47100", "a-b", "0-5", "-5", "47100-70000"])
def test_a_bad_bridge_ports_option_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"FIRST-LAST \(e\.g\. 47100-47199\)"):
        parse_port_range(text)


def test_the_bridge_ports_option_reads_a_range() -> None:
    assert parse_port_range("47100-47199") == (47100, 47199)
    assert parse_port_range(None) is None


def test_a_bridge_port_taken_after_it_was_chosen_is_named_with_the_range_to_widen() -> None:
    zmq = pytest.importorskip("zmq")
    from rigd.pipeline._cluster_start import _explain, failure_of

    context = zmq.Context()
    first, second = context.socket(zmq.PUSH), context.socket(zmq.PUSH)
    try:
        first.bind("tcp://0.0.0.0:*")
        port = int(first.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        with pytest.raises(zmq.ZMQError) as taken:
            second.bind(f"tcp://0.0.0.0:{port}")
    finally:
        first.close(linger=0)
        second.close(linger=0)
        context.term()

    answer = failure_of(taken.value)
    assert answer["port_in_use"] == port
    why = _explain("node_a", answer, {"node_a": "10.0.0.5"}, (port, port))
    assert f"tcp port {port} on 10.0.0.5 is in use" in why
    assert f"widen --bridge-ports {port}-{port}" in why
    assert "start the run again" in _explain("node_a", answer, {}, None)
    assert failure_of(ValueError("no such frame")) == {
        "error": "ValueError: no such frame",
        "port_in_use": None,
    }
