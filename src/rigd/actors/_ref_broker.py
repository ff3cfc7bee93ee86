"""Borrowed refs through the head: a process asks for the value (or the
cancel) of a pending ref another process owns (Ray's borrowed refs).

A ref's id starts with its owner's pid in hex; the head finds the owner by
it, asks it with ``REF_WANTED``, and answers the borrower when the owner's
``REF_VALUE`` comes, or with ``OwnerDiedError`` if the owner dies first.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from rigd._exceptions import OwnerDiedError
from rigd.actors._from_head import RefCancelWanted, RefWanted
from rigd.actors._head_records import Peer
from rigd.actors._protocol import encode
from rigd.actors._to_head import RefValue

__all__ = ["RefBroker"]


class RefBroker:
    """Pending borrowed-ref requests: token -> (borrower, its request id, the owner).

    Args:
        reply: ``reply(peer, req_id, payload, ok)`` answers a request.
        send: sends a message to a connected process.
    """

    def __init__(
        self,
        reply: Callable[[Peer, int, Any, bool], None],
        send: Callable[[Peer, tuple[Any, ...]], None],
    ) -> None:
        self._reply = reply
        self._send = send
        self._peers_by_pid: dict[int, Peer] = {}
        self._requests: dict[int, tuple[Peer, int, Peer]] = {}
        self._tokens = itertools.count(1)

    def hello(self, peer: Peer) -> None:
        """``peer`` connected: the refs it owns can be found by its pid."""
        self._peers_by_pid[peer.pid] = peer

    def _owner(self, ref_id: str) -> Peer | None:
        try:
            return self._peers_by_pid.get(int(ref_id.split("-", 1)[0], 16))
        except ValueError:
            return None

    def get(self, peer: Peer, req_id: int, ref_id: str) -> None:
        """Ask the owner of ``ref_id`` for its value, for ``peer``."""
        owner = self._owner(ref_id)
        if owner is None:
            self._reply(
                peer,
                req_id,
                OwnerDiedError(f"the process that owns ObjectRef({ref_id}) is gone"),
                False,
            )
            return
        token = next(self._tokens)
        self._requests[token] = (peer, req_id, owner)
        self._send(owner, encode(RefWanted(token, ref_id)))

    def cancel(self, ref_id: str, force: bool) -> None:
        """``rigd.cancel`` on a borrowed ref: its owner cancels the call.

        Ray's rule: cancelling goes to the owner. An owner that is gone has
        nothing to cancel.
        """
        owner = self._owner(ref_id)
        if owner is not None:
            self._send(owner, encode(RefCancelWanted(ref_id, force)))

    def value(self, report: RefValue) -> None:
        """The owner sent a value: on to the borrower that asked."""
        request = self._requests.pop(report.token, None)
        if request is not None:
            self._reply(request[0], request[1], (report.ok, report.body), True)

    def peer_lost(self, peer: Peer) -> None:
        """``peer`` is gone: who waits on a ref it owns gets ``OwnerDiedError``."""
        if self._peers_by_pid.get(peer.pid) is peer:
            del self._peers_by_pid[peer.pid]
        for token, (borrower, req_id, owner) in list(self._requests.items()):
            if owner is peer:
                del self._requests[token]
                self._reply(
                    borrower,
                    req_id,
                    OwnerDiedError(
                        f"the process (pid {peer.pid}) that owns a ref passed to this one died "
                        "before the ref's value was ready"
                    ),
                    False,
                )
            elif borrower is peer:
                del self._requests[token]
