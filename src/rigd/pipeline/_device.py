"""DeviceSource: a source that learns its frame shape from its device, once.

Planning runs in the planning process (the daemon, or ``rigd run``), which
must not open a camera: the camera is opened by its actor, in the actor's own
process, and opened once. So a device source's outputs are *deferred* at
planning: everything that can be checked from the file (classes, options,
links, cycles) is checked there and reported with file, line and key; then
the supervisor starts the device sources first and asks each, through its
handle, to open its device and report its outputs' shapes and dtypes and the
settings it applied (``describe_device``). With those the plan is resolved
(the shapes downstream and every link's agreement checked, again with file,
line and key), the rings are made, and the rest of the pipeline starts.

The device stays open from ``describe_device`` to ``stop``. An actor that is
restarted opens it again in ``setup`` and must find the same shapes, since
the rings are made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.actors import Actor

__all__ = ["DeviceSource"]

FrameSpec = tuple[tuple[int, ...], str]


class DeviceSource(Actor):
    """Base class of sources whose frame shape comes from an opened device.

    Subclasses define ``check_options`` (what can be checked without the
    device), ``open_device`` (open and configure it, in the actor's process),
    ``device_outputs`` (each output's shape and dtype, from the open device),
    ``close_device``, and may add ``device_metadata`` (the settings applied,
    read back from the device, recorded in the run file's metadata).
    """

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Check what the options say without opening the device.

        Runs at planning; raise ``ValueError`` naming the option and the fix.
        """

    @classmethod
    def defers_outputs(cls, options: Mapping[str, Any]) -> bool:
        """Whether the outputs' shapes wait for the device (True unless a subclass knows)."""
        return True

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, FrameSpec]
    ) -> dict[str, FrameSpec]:
        cls.check_options(options)
        return {}

    # -- in the actor's own process --------------------------------------------------

    def open_device(self) -> None:
        """Open and configure the device."""
        raise NotImplementedError(f"{type(self).__name__} must define open_device()")

    def device_outputs(self) -> dict[str, FrameSpec]:
        """Each output's shape and dtype, from the open device."""
        raise NotImplementedError(f"{type(self).__name__} must define device_outputs()")

    def device_metadata(self) -> dict[str, Any]:
        """The settings applied, as flat run metadata (names to numbers or strings)."""
        return {}

    def close_device(self) -> None:
        """Close the device (called by ``stop``, and safe to call twice)."""

    @property
    def device_open(self) -> bool:
        return bool(self.__dict__.get("_rigd_device_open"))

    def describe_device(self) -> dict[str, Any]:
        """Open the device (once) and report its outputs and applied settings.

        Called by the supervisor through the handle, before the rings exist.

        Returns:
            ``{"outputs": {name: (shape, dtype)}, "metadata": {...}}``.
        """
        self._open_once()
        outputs = {
            name: (tuple(int(n) for n in shape), np.dtype(dtype).str)
            for name, (shape, dtype) in self.device_outputs().items()
        }
        return {"outputs": outputs, "metadata": dict(self.device_metadata())}

    def setup(self) -> None:
        # Opened by describe_device already, unless this process is a restart.
        self._open_once()
        for name, (shape, dtype) in self.device_outputs().items():
            writer = self.outputs.get(name)
            ring = getattr(writer, "_ring", None)
            if ring is None:
                continue
            if tuple(shape) != tuple(ring.shape) or np.dtype(dtype) != ring.dtype:
                raise RuntimeError(
                    f"{type(self).__name__}: the device now gives {tuple(shape)} "
                    f"{np.dtype(dtype).name} frames, but output {name!r} was made for "
                    f"{tuple(ring.shape)} {ring.dtype.name}; restart the run"
                )

    def stop(self) -> None:
        self.__dict__["_rigd_device_open"] = False
        self.close_device()

    def _open_once(self) -> None:
        if not self.device_open:
            self.open_device()
            self.__dict__["_rigd_device_open"] = True
