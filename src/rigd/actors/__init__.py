"""The actor runtime: Ray's actor API on one machine.

Remote classes and functions, handles, refs, the head and the workers. This
package knows nothing of frames, rings or HDF5: the pipeline actor's inputs
and outputs are opaque endpoints the pipeline package opens.
"""

from rigd.actors._actor_log import run_log_format
from rigd.actors._api import cancel, exit_actor, get, get_actor, get_gpu_ids, kill, put, wait
from rigd.actors._cluster_resources import available_resources, cluster_resources, nodes
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._handle import ActorClass, ActorHandle, ActorMethod, ActorProxy
from rigd.actors._job_config import JobConfig
from rigd.actors._method_options import MethodOptions, method
from rigd.actors._one_thread import OneThread, run_on_one_thread
from rigd.actors._options import ActorOptions, TaskOptions
from rigd.actors._pipeline_actor import ACTOR_STOP_GRACE_S, Actor, Endpoints
from rigd.actors._placement_group import (
    PlacementGroup,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from rigd.actors._ref import ObjectRef
from rigd.actors._remote import RemoteFunction, remote
from rigd.actors._runtime_context import RuntimeContext, get_runtime_context
from rigd.actors._scheduling import PlacementGroupSchedulingStrategy
from rigd.actors._session import (
    get_runtime,
    init,
    is_initialized,
    ray_backend,
    run_locally,
    shutdown,
)
from rigd.actors._state import ActorInfo, list_actors
from rigd.actors._step_loop import EXIT_STEP_ERRORS as ACTOR_STEP_ERRORS_EXIT
from rigd.actors._step_loop import add_fatal_error, add_input_lost_error

__all__ = [
    "ACTOR_STEP_ERRORS_EXIT",
    "ACTOR_STOP_GRACE_S",
    "Actor",
    "ActorClass",
    "ActorHandle",
    "ActorInfo",
    "ActorMethod",
    "ActorOptions",
    "ActorProxy",
    "Endpoints",
    "JobConfig",
    "MethodOptions",
    "ObjectRef",
    "ObjectRefGenerator",
    "OneThread",
    "PlacementGroup",
    "PlacementGroupSchedulingStrategy",
    "RemoteFunction",
    "RuntimeContext",
    "TaskOptions",
    "add_fatal_error",
    "add_input_lost_error",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exit_actor",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_placement_group",
    "get_runtime",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "list_actors",
    "method",
    "nodes",
    "placement_group",
    "placement_group_table",
    "put",
    "ray_backend",
    "remote",
    "remove_placement_group",
    "run_locally",
    "run_log_format",
    "run_on_one_thread",
    "shutdown",
    "wait",
]
