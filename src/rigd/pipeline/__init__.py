"""Pipelines: improv-style actors linked by rings, and the built-in lab actors.

``plan_pipeline`` reads and checks a pipeline file; ``Pipeline`` runs it
(the supervisor). Built-in actors: ``SimulatedCamera``, ``HDF5Recorder``,
``FrameStats``, ``FilePlayback``, ``ZmqPublisher``, and the processors that
run on a GPU actor with CuPy or on numpy otherwise: ``MotionCorrection``,
``DeltaFOverF``, ``Bin``, ``RoiTraces`` (on ``FrameProcessor``). Triggered
capture: ``FrameTrigger`` (decides per frame, on the GPU when it has one)
and ``TriggeredRecorder`` (the frames around each trigger).
"""

from rigd.pipeline._binning import Bin
from rigd.pipeline._camera import SimulatedCamera
from rigd.pipeline._cpu_latency import CpuLatencyRequest
from rigd.pipeline._dff import DeltaFOverF
from rigd.pipeline._expression import Expression, ExpressionError
from rigd.pipeline._motion import MotionCorrection, PhaseCorrelation
from rigd.pipeline._plan import ActorPlan, Plan, RingPlan, plan_pipeline
from rigd.pipeline._playback import FilePlayback
from rigd.pipeline._processor import Emission, FrameProcessor
from rigd.pipeline._publisher import ZmqPublisher
from rigd.pipeline._recorder import HDF5Recorder
from rigd.pipeline._roi import RoiTraces, roi_masks
from rigd.pipeline._stats import FrameStats
from rigd.pipeline._supervisor import LinkStatus, Pipeline, PipelineStatus, RunReport
from rigd.pipeline._trigger import FrameTrigger, TriggeredRecorder

__all__ = [
    "ActorPlan",
    "Bin",
    "CpuLatencyRequest",
    "DeltaFOverF",
    "Emission",
    "Expression",
    "ExpressionError",
    "FilePlayback",
    "FrameProcessor",
    "FrameStats",
    "FrameTrigger",
    "HDF5Recorder",
    "LinkStatus",
    "MotionCorrection",
    "PhaseCorrelation",
    "Pipeline",
    "PipelineStatus",
    "Plan",
    "RingPlan",
    "RoiTraces",
    "RunReport",
    "SimulatedCamera",
    "TriggeredRecorder",
    "ZmqPublisher",
    "plan_pipeline",
    "roi_masks",
]
