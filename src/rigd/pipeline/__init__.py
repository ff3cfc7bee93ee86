"""Pipelines: improv-style actors linked by rings, and the built-in lab actors.

``plan_pipeline`` reads and checks a pipeline file; ``Pipeline`` runs it
(the supervisor). Built-in actors: ``SimulatedCamera``, ``HDF5Recorder``,
``FrameStats``, ``FilePlayback``, ``ZmqPublisher``, ``ZmqSource``, the
bridges that carry a link between machines (``BridgeSender``,
``BridgeReceiver``), and the processors that
run on a GPU actor with CuPy or on numpy otherwise: ``MotionCorrection``,
``DeltaFOverF``, ``Bin``, ``RoiTraces`` (on ``FrameProcessor``). Triggered
capture: ``FrameTrigger`` (decides per frame, on the GPU when it has one)
and ``TriggeredRecorder`` (the frames around each trigger).

Sources from real instruments and files, each on its own library, an
optional extra imported only when the source is first used:
``GenICamCamera`` (Aravis, ``rigd[genicam]``), ``VideoSource`` (PyAV,
``rigd[video]``), ``TiffStack`` (tifffile, ``rigd[tiff]``), and
``list_cameras`` (the GenICam devices found).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigd.pipeline._binning import Bin
    from rigd.pipeline._block_signals import TERMINATING_SIGNALS, StopSignal
    from rigd.pipeline._bridge import BridgeReceiver, BridgeSender
    from rigd.pipeline._camera import SimulatedCamera
    from rigd.pipeline._cluster import ClusterPipeline
    from rigd.pipeline._cpu_latency import CpuLatencyRequest
    from rigd.pipeline._device import DeviceSource
    from rigd.pipeline._dff import DeltaFOverF
    from rigd.pipeline._expression import Expression, ExpressionError
    from rigd.pipeline._frame_trigger import FrameTrigger
    from rigd.pipeline._inline import InlineReport, run_inline
    from rigd.pipeline._motion import MotionCorrection
    from rigd.pipeline._phase_correlation import PhaseCorrelation
    from rigd.pipeline._plan import ActorPlan, Plan, RingPlan, plan_pipeline
    from rigd.pipeline._playback import FilePlayback
    from rigd.pipeline._processor import Emission, FrameProcessor
    from rigd.pipeline._publisher import ZmqPublisher
    from rigd.pipeline._recorder import HDF5Recorder
    from rigd.pipeline._replay import (
        check_replay,
        replay_file,
        replay_outputs,
        replay_pipeline,
    )
    from rigd.pipeline._roi import RoiTraces, roi_masks
    from rigd.pipeline._run_log import run_log_path
    from rigd.pipeline._state import (
        ACTIVE_RUN_STATES,
        RUN_TRANSITIONS,
        IllegalTransitionError,
        RunState,
        StateMachine,
        check_transition,
    )
    from rigd.pipeline._stats import FrameStats
    from rigd.pipeline._supervisor import (
        ActorStatus,
        LinkStatus,
        PauseSpan,
        Pipeline,
        PipelineFailedError,
        PipelineStatus,
        RunReport,
    )
    from rigd.pipeline._trigger import TriggeredRecorder
    from rigd.pipeline._zmq_source import ZmqSource

__all__ = [  # noqa: RUF022 - plain sorted order, which tests/test_exports.py checks
    "ACTIVE_RUN_STATES",
    "ActorPlan",
    "ActorStatus",
    "Bin",
    "BridgeReceiver",
    "BridgeSender",
    "ClusterPipeline",
    "CpuLatencyRequest",
    "DeltaFOverF",
    "DeviceSource",
    "Emission",
    "Expression",
    "ExpressionError",
    "FilePlayback",
    "FrameProcessor",
    "FrameStats",
    "FrameTrigger",
    "GenICamCamera",
    "HDF5Recorder",
    "IllegalTransitionError",
    "InlineReport",
    "LinkStatus",
    "MotionCorrection",
    "PauseSpan",
    "PhaseCorrelation",
    "Pipeline",
    "PipelineFailedError",
    "PipelineStatus",
    "Plan",
    "RUN_TRANSITIONS",
    "RingPlan",
    "RoiTraces",
    "RunReport",
    "RunState",
    "SimulatedCamera",
    "StateMachine",
    "StopSignal",
    "TERMINATING_SIGNALS",
    "TiffStack",
    "TriggeredRecorder",
    "VideoSource",
    "ZmqPublisher",
    "ZmqSource",
    "check_replay",
    "check_transition",
    "list_cameras",
    "plan_pipeline",
    "replay_file",
    "replay_outputs",
    "replay_pipeline",
    "roi_masks",
    "run_inline",
    "run_log_path",
]

# name: (module, the extra that brings its library)
_OPTIONAL = {
    "GenICamCamera": ("rigd.pipeline._genicam_camera", "genicam"),
    "list_cameras": ("rigd.pipeline._genicam", "genicam"),
    "TiffStack": ("rigd.pipeline._tiff", "tiff"),
    "VideoSource": ("rigd.pipeline._video", "video"),
}


#: Every other name: its module, imported on first use. Importing rigd.pipeline
#: (every actor process and Ray task of a pipeline does) then costs what the
#: names it uses need: a Ray task replaying a file (``replay_file``) does not
#: import the supervisor, the bridges and their pyzmq, the processors, ...
_LAZY = {
    "ACTIVE_RUN_STATES": "rigd.pipeline._state",
    "ActorPlan": "rigd.pipeline._plan",
    "ActorStatus": "rigd.pipeline._supervisor",
    "Bin": "rigd.pipeline._binning",
    "BridgeReceiver": "rigd.pipeline._bridge",
    "BridgeSender": "rigd.pipeline._bridge",
    "ClusterPipeline": "rigd.pipeline._cluster",
    "CpuLatencyRequest": "rigd.pipeline._cpu_latency",
    "DeltaFOverF": "rigd.pipeline._dff",
    "DeviceSource": "rigd.pipeline._device",
    "Emission": "rigd.pipeline._processor",
    "Expression": "rigd.pipeline._expression",
    "ExpressionError": "rigd.pipeline._expression",
    "FilePlayback": "rigd.pipeline._playback",
    "FrameProcessor": "rigd.pipeline._processor",
    "FrameStats": "rigd.pipeline._stats",
    "FrameTrigger": "rigd.pipeline._frame_trigger",
    "HDF5Recorder": "rigd.pipeline._recorder",
    "IllegalTransitionError": "rigd.pipeline._state",
    "InlineReport": "rigd.pipeline._inline",
    "LinkStatus": "rigd.pipeline._supervisor",
    "MotionCorrection": "rigd.pipeline._motion",
    "PauseSpan": "rigd.pipeline._supervisor",
    "PhaseCorrelation": "rigd.pipeline._phase_correlation",
    "Pipeline": "rigd.pipeline._supervisor",
    "PipelineFailedError": "rigd.pipeline._supervisor",
    "PipelineStatus": "rigd.pipeline._supervisor",
    "Plan": "rigd.pipeline._plan",
    "RUN_TRANSITIONS": "rigd.pipeline._state",
    "RingPlan": "rigd.pipeline._plan",
    "RoiTraces": "rigd.pipeline._roi",
    "RunReport": "rigd.pipeline._supervisor",
    "RunState": "rigd.pipeline._state",
    "SimulatedCamera": "rigd.pipeline._camera",
    "StateMachine": "rigd.pipeline._state",
    "StopSignal": "rigd.pipeline._block_signals",
    "TERMINATING_SIGNALS": "rigd.pipeline._block_signals",
    "TriggeredRecorder": "rigd.pipeline._trigger",
    "ZmqPublisher": "rigd.pipeline._publisher",
    "ZmqSource": "rigd.pipeline._zmq_source",
    "check_replay": "rigd.pipeline._replay",
    "check_transition": "rigd.pipeline._state",
    "plan_pipeline": "rigd.pipeline._plan",
    "replay_file": "rigd.pipeline._replay",
    "replay_outputs": "rigd.pipeline._replay",
    "replay_pipeline": "rigd.pipeline._replay",
    "roi_masks": "rigd.pipeline._roi",
    "run_inline": "rigd.pipeline._inline",
    "run_log_path": "rigd.pipeline._run_log",
}


def __getattr__(name: str) -> Any:
    # The sources' libraries load on first use: importing rigd.pipeline (every
    # actor process does) never pays for GObject, FFmpeg or tifffile.
    lazy = _LAZY.get(name)
    if lazy is not None:
        value = getattr(importlib.import_module(lazy), name)
        globals()[name] = value
        return value
    if name not in _OPTIONAL:
        raise AttributeError(f"module 'rigd.pipeline' has no attribute {name!r}")
    module_name, extra = _OPTIONAL[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"rigd.pipeline.{name} needs a library that is not installed ({exc}); "
            f"install it with: pip install 'rigd[{extra}]'"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value
