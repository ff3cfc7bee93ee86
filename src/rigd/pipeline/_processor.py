"""FrameProcessor: the base of the built-in processors that run on a GPU or on the CPU.

A processor is written once against an array module ``xp``: CuPy on an
actor that was given a GPU (``num_gpus`` in the pipeline file) and has
CuPy, numpy (with scipy) otherwise. The base class does the moving:

- **In.** Each frame of the ``frames`` input is copied from its ring slot
  (registered as pinned memory when the actor has a GPU, so the copy is a
  DMA) into one of two device buffers by ``DeviceFrames``; the slot is
  released as soon as the copy is done. On the CPU the slot is read in
  place, with no copy.
- **Compute.** ``process`` launches its kernels on one compute stream, so
  state a processor keeps on the device (a template, a baseline) is updated
  in frame order.
- **Overlap.** Flat out, the upload of frame k+1 runs while frame k's
  kernels run: the results of frame k are taken only after frame k+1 is on
  its way. When no frame is waiting (a paced camera), frame k's results are
  taken at once, so overlap never adds latency.
- **Out.** Results come back to the host only as what an output ring
  needs: a frame is copied from the device straight into the output ring's
  slot (pinned too), a record (a few numbers) into its slot.

Every result keeps the frame id and acquisition time of the frame it was
made from, so latency is measured from the camera, and a recorder lines up
each record with its frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rigd._exceptions import EndOfStream, WouldBlock
from rigd.actors import Actor, get_gpu_ids
from rigd.gpu import DeviceFrames, array_module, to_host

__all__ = ["Emission", "FrameProcessor"]

Spec = tuple[tuple[int, ...], str]


@dataclass
class Emission:
    """What ``process`` gives back for one output step: arrays by output name
    (on the device or the host, in ``xp``) and the stamps they carry."""

    frame_id: int
    timestamp_ns: int
    outputs: dict[str, Any]


class FrameProcessor(Actor):
    """Base class of processors with one input, ``frames``, written against ``xp``.

    Subclasses set ``output_names``, override ``describe_outputs`` (shapes and
    dtypes), ``prepare(shape, dtype)`` (allocate state with ``self.xp``) and
    ``process(data, frame_id, timestamp_ns)``, which returns a list of
    ``Emission`` (none while it gathers, several when it lets go of what it
    gathered). ``flush()`` gives back what is still gathered at end of stream.
    An output that no link reads is not copied back (``linked_outputs``
    tells which are read, so a processor can skip work for the others).
    ``data`` is the frame in ``xp`` as it came (e.g. uint16); it is valid only
    during the call.

    Attributes:
        xp: ``cupy`` or ``numpy``, chosen at ``setup``.
        backend: its name, in ``status()``.
    """

    input_names = ("frames",)
    #: The outputs some link reads (None: all, when driven outside a pipeline).
    linked_outputs: frozenset[str] | None = None

    def setup(self) -> None:
        reader = self.inputs.frames
        self.linked_outputs = frozenset(self.outputs)
        self.xp = array_module(bool(get_gpu_ids()))
        self.backend: str = self.xp.__name__
        self.frames_in = 0
        self.frames_out = 0
        self._device: DeviceFrames | None = None
        self._stream: Any = None
        if self.backend == "cupy":
            self._device = DeviceFrames(reader.shape, reader.dtype)
            self._stream = self.xp.cuda.Stream(non_blocking=True)
        #: Launched, not yet taken: (done event, emissions).
        self._pending: tuple[Any, list[Emission]] | None = None
        self.prepare(tuple(reader.shape), np.dtype(reader.dtype))

    # -- what a processor defines ------------------------------------------------

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        """Allocate state for frames of ``shape`` and ``dtype`` (with ``self.xp``)."""

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        """Launch the work for one frame; return what goes out (may be empty)."""
        raise NotImplementedError(f"{type(self).__name__} must define process()")

    def flush(self) -> list[Emission]:
        """At end of stream: what is still gathered (a partial bin, say)."""
        return []

    # -- the loop ----------------------------------------------------------------

    def run_step(self) -> None:
        reader = self.inputs.frames
        try:
            frame = reader.get_nowait() if self._pending is not None else reader.get(timeout=1.0)
        except WouldBlock:
            self._take(self._pending)  # nothing waiting: no reason to hold results back
            self._pending = None
            return
        except EndOfStream:
            self._take(self._pending)
            self._pending = None
            self._take(self._launch(self.flush))
            raise
        if self._device is None:
            with frame:
                self.frames_in += 1
                # Sent before the slot is released: results may be views of it.
                self._send(self.process(frame.array, frame.frame_id, frame.timestamp_ns))
            return
        with frame:
            device, _ = self._device.upload(frame.array)  # returns once copied
            frame_id, timestamp_ns = frame.frame_id, frame.timestamp_ns
        self.frames_in += 1
        launched = self._launch(lambda: self.process(device, frame_id, timestamp_ns))
        # Frame k-1's kernels ran while frame k was uploaded; take them now.
        self._take(self._pending)
        self._pending = launched

    def stop(self) -> None:
        # A stop that came before end of stream: what was launched still goes out.
        pending, self._pending = self._pending, None
        try:
            self._take(pending)
        except Exception:  # noqa: BLE001 - the outputs may be closed already
            pass

    def _launch(self, work: Any) -> tuple[Any, list[Emission]] | None:
        """Run ``work`` (kernels on the compute stream); what it emits, with its
        done event, or None when it emits nothing."""
        if self._stream is None:
            self._send(work())
            return None
        with self._stream:
            emissions = work()
            done = self._stream.record()
        return (done, emissions) if emissions else None

    def _take(self, pending: tuple[Any, list[Emission]] | None) -> None:
        if pending is not None:
            done, emissions = pending
            done.synchronize()
            self._send(emissions)

    def _send(self, emissions: list[Emission]) -> None:
        outputs = self.outputs
        for emission in emissions:
            for name, array in emission.outputs.items():
                if name not in outputs:
                    continue  # not linked: nobody reads it
                with outputs[name].slot(
                    frame_id=emission.frame_id, timestamp_ns=emission.timestamp_ns
                ) as view:
                    to_host(array, out=view, stream=self._stream)
            self.frames_out += 1

    def status(self) -> dict[str, Any]:
        """Frames taken and results sent so far, the backend (numpy or cupy) and
        the GPUs the actor was given (indexes, as ``rigd.get_gpu_ids``)."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "backend": self.backend,
            "gpu_ids": get_gpu_ids(),
        }

    @staticmethod
    def frame_shape(inputs: Mapping[str, Spec], what: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """The ``frames`` input's shape and dtype, for ``describe_outputs``.

        Raises:
            ValueError: no ``frames`` input is linked, or its frames are not
                at least 2-D (``what`` names the processor in the message).
        """
        if "frames" not in inputs:
            raise ValueError(
                f"{what} needs its input 'frames' linked (a link '... -> NAME.frames')"
            )
        shape, dtype = inputs["frames"]
        if len(shape) < 2:
            raise ValueError(
                f"{what} works on images: its frames must be at least 2-D, got shape {list(shape)}"
            )
        return tuple(shape), np.dtype(dtype)
