"""Processors that hang, for ``rigd reprocess``'s stop tests: at a given frame
(``Stall``), past the stop's grace (``LateStep``), or in a worker's planning
(``PlanStall``)."""

from __future__ import annotations

import os
import threading
from typing import Any

from rigd import Actor

#: A reprocess pipeline: camera -> stall -> recorder, the camera recorded too.
STALL_PIPELINE = """
name: stall
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [8, 12], fps: 100}}
  - name: stall
    class: tests.service.stall_actors.Stall
    options: {{marker: "{marker}"}}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: rigd-data}}
links:
  - {{link: camera.frames -> stall.frames}}
  - {{link: stall.frames -> recorder.stalled}}
  - {{link: camera.frames -> recorder.camera}}
"""


class Stall(Actor):
    """Passes frames on until one of id ``from_id`` or more: then it makes the file
    ``marker/PID`` (its process's id) and takes no frame again (a processor that
    hangs, each step returning, so a stop ends it at once)."""

    input_names = ("frames",)
    output_names = ("frames",)

    def __init__(self, marker: str, from_id: int = 1000) -> None:
        self.marker = marker
        self.from_id = from_id
        self.stalled = False
        self._idle = threading.Event()

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        shape, dtype = inputs["frames"]
        return {"frames": (tuple(shape), dtype)}

    def run_step(self) -> None:
        if self.stalled:
            self._idle.wait(0.02)  # never set: hangs, a step at a time
            return
        with self.inputs.frames.read(timeout=1.0) as frame:
            if frame.frame_id >= self.from_id:
                self.stalled = True
                open(os.path.join(self.marker, str(os.getpid())), "x").close()
                return
            self.outputs.frames.put(
                frame.array, frame_id=frame.frame_id, timestamp_ns=frame.timestamp_ns
            )


#: The same pipeline with a step that outlives the stop: camera -> late -> recorder.
LATE_PIPELINE = STALL_PIPELINE.replace("stall_actors.Stall", "stall_actors.LateStep")


class LateStep(Actor):
    """Passes its first frame on only once the stop has removed its endpoints (a
    step that outlives the stop's grace): makes ``marker/PID`` when it holds it."""

    input_names = ("frames",)
    output_names = ("frames",)

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._detached = threading.Event()

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        shape, dtype = inputs["frames"]
        return {"frames": (tuple(shape), dtype)}

    def __rigd_detach__(self) -> None:
        super().__rigd_detach__()
        self._detached.set()

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            data, frame_id = frame.array.copy(), frame.frame_id
        self._detached.clear()  # (attaching detaches first)
        open(os.path.join(self.marker, str(os.getpid())), "x").close()
        self._detached.wait(60)
        self.outputs.frames.put(data, frame_id=frame_id)  # no output 'frames' by now


#: The same pipeline whose processor hangs in a worker's planning: camera -> stall -> recorder.
PLAN_STALL_PIPELINE = STALL_PIPELINE.replace(
    "stall_actors.Stall", "stall_actors.PlanStall"
).replace('{{marker: "{marker}"}}', '{{marker: "{marker}", driver: {driver}}}')


class PlanStall(Actor):
    """Passes frames on. Its planning (``describe_outputs``), in any process but
    ``driver`` (the job's, which checks the pipeline once), makes the file
    ``marker/PID`` and hangs (at most 120 s): a worker to kill before its output
    (``rigd reprocess --address``)."""

    input_names = ("frames",)
    output_names = ("frames",)

    def __init__(self, marker: str, driver: int) -> None:
        self.marker = marker

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        if os.getpid() != int(options["driver"]):
            open(os.path.join(options["marker"], str(os.getpid())), "x").close()
            threading.Event().wait(120)  # never set: killed while it waits
        shape, dtype = inputs["frames"]
        return {"frames": (tuple(shape), dtype)}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            self.outputs.frames.put(
                frame.array, frame_id=frame.frame_id, timestamp_ns=frame.timestamp_ns
            )
