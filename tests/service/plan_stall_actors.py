"""A processor whose planning hangs in a replay's worker (``rigd reprocess --address``):
the worker is killed there, before its replay made any output."""

from __future__ import annotations

import os
import threading
from typing import Any

from rigd import Actor

#: A reprocess pipeline: camera -> plan_stall -> recorder, the camera recorded too.
PLAN_STALL_PIPELINE = """
name: plan_stall
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [8, 12], fps: 100}}
  - name: stall
    class: tests.service.plan_stall_actors.PlanStall
    options: {{marker: "{marker}", driver: {driver}}}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: rigd-data}}
links:
  - {{link: camera.frames -> stall.frames}}
  - {{link: stall.frames -> recorder.stalled}}
  - {{link: camera.frames -> recorder.camera}}
"""


class PlanStall(Actor):
    """Passes frames on. Its planning (``describe_outputs``), in any process but
    ``driver`` (the job's, which checks the pipeline once), makes the file
    ``marker/PID`` and hangs (at most 120 s): a worker to kill before its output."""

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
