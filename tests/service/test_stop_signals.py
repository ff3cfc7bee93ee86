"""Every foreground command (``rigd run``, ``rigd run --address``, ``rigd reprocess``)
takes SIGHUP as the clean stop SIGTERM is: one definition of the stop signals."""

from __future__ import annotations

import io
import signal

import pytest

from rigd.service._reprocess_signals import StopSignals
from rigd.service._run_cluster import ClusterStop
from rigd.service._run_signals import Interrupts
from rigd.service._stop_signals import STOP_SIGNALS, handling_stop_signals


def test_the_stop_signals_are_ctrl_c_sigterm_and_sighup() -> None:
    assert set(STOP_SIGNALS) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def test_a_sighup_to_rigd_run_address_asks_a_clean_stop_and_never_forces() -> None:
    # Was: rigd run --address handled SIGINT and SIGTERM only: a SIGHUP ended it at
    # once (exit 129), every node's file unsealed.
    before = signal.getsignal(signal.SIGHUP)
    requests = ClusterStop()
    with handling_stop_signals(requests.handle):
        assert signal.getsignal(signal.SIGHUP) == requests.handle
        signal.raise_signal(signal.SIGHUP)
        assert requests.stop.is_set()
        requests.stopping.set()  # said "stopping": a SIGHUP now is still no force
        signal.raise_signal(signal.SIGHUP)
        with pytest.raises(KeyboardInterrupt):  # a Ctrl-C is
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_sighup_to_rigd_reprocess_interrupts_once_then_is_only_noted() -> None:
    err = io.StringIO()
    before = signal.getsignal(signal.SIGHUP)
    with StopSignals(err) as signals:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGHUP)
        signal.raise_signal(signal.SIGHUP)
    assert signals.name == "SIGHUP"
    assert "SIGHUP: already stopping" in err.getvalue()
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_sighup_to_rigd_run_asks_a_clean_stop_and_never_forces() -> None:
    interrupts = Interrupts()
    with handling_stop_signals(interrupts.handle):
        signal.raise_signal(signal.SIGHUP)
        interrupts.stopping = True
        signal.raise_signal(signal.SIGHUP)
    assert interrupts.stop.is_set()
    assert not interrupts.forced
    assert interrupts.count == 2
