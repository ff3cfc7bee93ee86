"""A processor whose step is still under way when the stop closes its endpoints,
for ``rigd reprocess``'s Ctrl-C test."""

from __future__ import annotations

import os
import threading
from typing import Any

from rigd import Actor

#: A reprocess pipeline: camera -> late -> recorder, the camera recorded too.
LATE_PIPELINE = """
name: late
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [8, 12], fps: 100}}
  - name: late
    class: tests.service.stop_actors.LateStep
    options: {{marker: "{marker}"}}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: rigd-data}}
links:
  - {{link: camera.frames -> late.frames}}
  - {{link: late.frames -> recorder.late}}
  - {{link: camera.frames -> recorder.camera}}
"""


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
