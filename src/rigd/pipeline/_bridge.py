"""Bridges: one link of a pipeline carried between two machines over ZMQ tcp.

``BridgeSender`` reads a local ring and sends its frames; ``BridgeReceiver``,
on the far machine, writes them into a ring there. Together they keep the
link's policy:

- ``lossless``: credit-based flow control. The sender keeps at most
  ``window`` frames sent but not yet acknowledged; the receiver acknowledges
  a frame once it is committed to its ring, so a slow reader on the far side
  holds the receiver back, which holds the sender back, which (its local
  reader being lossless) holds the writer back. The unacknowledged frames
  are kept: a receiver that dies and comes back (its restart policy) says
  which frame it has last, and the sender sends the rest again. No frame is
  lost and none is written twice.
- ``latest``: the sender's local reader is a latest reader; it sends the
  newest frame whenever the window has room and skips the others
  (conflation): the writer is never held back.

The far end: every message from the receiver (acknowledgements, and one
every ``_HEARTBEAT_S`` when there is nothing to acknowledge) says it is
alive. A receiver silent for ``peer_timeout`` seconds (dead, or its network
stalled, or it stopped reading) is declared *down*: the sender keeps its
window, and discards the frames that come after it (counted, their ids
kept in ``status()['lost']``) so the writer is not held back forever. A
receiver that talks again (the same one, or a restarted one) ends it. The
frames lost while it was down are missing ids in the receiver's ring, so the
recorder on the far side puts them in its drop ledger (reason ``gap``).

End of stream: the sender sends ``end`` (the last frame's id) once its
input ended and every frame was acknowledged; the receiver closes its ring
after the frames before it, and everything downstream ends in its turn.

Wire format (ZMQ ROUTER on the sender, bound; DEALER on the receiver,
connected; every message is multipart):

- sender to receiver: ``[FRAME, data]`` a frame (``FRAME``: ``b"F"``, the
  frame id and its timestamp in ns, ``struct`` ``<cqq``; ``data``: the
  frame's bytes), ``[b"W", header]`` welcome (JSON ``shape``, ``dtype``,
  ``policy``, ``session``, ``window``: the frames it sends unacknowledged),
  ``[b"E", last_id]`` end of stream, ``[b"H"]`` heartbeat;
- sender to a second receiver: ``[b"R", reason]``, refused: one sender feeds
  one receiver; the one it feeds is still connected (a receiver's new
  connection after its old one closed is welcomed instead);
- receiver to sender: ``[b"A", last_id]`` (the last frame id committed, an
  8-byte little-endian signed integer, -1 for none): acknowledgement and
  heartbeat at once, sent every half ``window`` of frames, and when no frame
  came for 2 ms while some are unacknowledged; ``[b"B"]`` bye, in answer to
  ``end``.

The two ends are in ``_bridge_sender`` and ``_bridge_receiver``, their
shared constants in ``_bridge_wire``, the order of a clean stop of a
pipeline with bridges in ``_stop_order``; this module re-exports them.
"""

from __future__ import annotations

from rigd.pipeline._bridge_receiver import BridgeReceiver
from rigd.pipeline._bridge_sender import BridgeSender
from rigd.pipeline._stop_order import fed_from_afar, stop_order

__all__ = ["BridgeReceiver", "BridgeSender", "fed_from_afar", "stop_order"]
