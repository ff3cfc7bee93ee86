"""Pipelines: improv-style actors linked by rings, and the built-in lab actors.

``plan_pipeline`` reads and checks a pipeline file; ``Pipeline`` runs it
(the supervisor). Built-in actors: ``SimulatedCamera``, ``HDF5Recorder``,
``FrameStats``, ``FilePlayback``, ``ZmqPublisher``.
"""

from rigd.pipeline._camera import SimulatedCamera
from rigd.pipeline._cpu_latency import CpuLatencyRequest
from rigd.pipeline._plan import ActorPlan, Plan, RingPlan, plan_pipeline
from rigd.pipeline._playback import FilePlayback
from rigd.pipeline._publisher import ZmqPublisher
from rigd.pipeline._recorder import HDF5Recorder
from rigd.pipeline._stats import FrameStats
from rigd.pipeline._supervisor import LinkStatus, Pipeline, PipelineStatus, RunReport

__all__ = [
    "ActorPlan",
    "CpuLatencyRequest",
    "FilePlayback",
    "FrameStats",
    "HDF5Recorder",
    "LinkStatus",
    "Pipeline",
    "PipelineStatus",
    "Plan",
    "RingPlan",
    "RunReport",
    "SimulatedCamera",
    "ZmqPublisher",
    "plan_pipeline",
]
