"""Remote classes, actor handles and their methods.

``@rigd.remote`` (``_remote``) turns a class into an ``ActorClass``
(``Counter.remote()`` starts an actor and returns its handle) and a function
into a ``RemoteFunction`` (``_remote``). A handle's methods have
``.remote()``, which sends the call and returns an ``ObjectRef``. Checking
and serializing arguments is ``_arguments``'s; per-method options
(``@rigd.method``, ``.options()``) are ``_method_options``'s.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any, Generic, TypeAlias, TypeVar, Union

from rigd.actors import _session
from rigd.actors._arguments import probing, serialize_args, unserializable
from rigd.actors._method_options import (
    CALL_OPTIONS,
    MethodOptions,
    check_method_options,
    marked_options,
    ray_method_options,
)
from rigd.actors._options import ActorOptions
from rigd.actors._pickling import dumps_by_value
from rigd.actors._placement_group import PlacementGroup, check_fits
from rigd.actors._ref import ObjectRef
from rigd.actors._returns import split_returns
from rigd.actors._schema import (
    ActorKind,
    ActorSchema,
    build_schema,
    call_signature,
    check_arguments,
)
from rigd.actors._to_head import CreateActor

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ActorMethod",
    "ActorProxy",
]

T = TypeVar("T")


class ActorClass(Generic[T]):
    """A class made remote: ``.remote(...)`` starts an actor of it.

    Not constructed directly: use ``@rigd.remote`` or ``rigd.remote(Class)``.
    """

    def __init__(self, cls: type[T], options: ActorOptions) -> None:
        hook = inspect.getattr_static(cls, "__rigd_shutdown__", None)
        if hook is not None and (
            inspect.iscoroutinefunction(hook) or inspect.isasyncgenfunction(hook)
        ):
            raise TypeError(
                f"{cls.__name__}.__rigd_shutdown__ must be a plain (synchronous) method: rigd "
                "calls it as the actor ends, where no event loop would run a coroutine; "
                "define it with `def`, not `async def`"
            )
        self._cls = cls
        self._options = options
        # Built now, so a method naming an undeclared concurrency group fails
        # at definition or .options() time, not in the worker.
        self._schema = build_schema(cls, options, marked_options)
        self._init_signature = call_signature(cls)
        self._body: bytes | None = None
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"actors cannot be instantiated directly; instead of {self.__name__}(), "
            f"use {self.__name__}.remote()"
        )

    def __repr__(self) -> str:
        return f"ActorClass({self._cls.__module__}.{self._cls.__qualname__})"

    def __getattr__(self, name: str) -> Any:
        # The original class's attributes (plain ones, static and class
        # methods), as in Ray: `Counter.LIMIT`, `Counter.make()`, also inside
        # the actor's own methods, where `Counter` is this remote class.
        cls = self.__dict__.get("_cls")
        if cls is None or name.startswith("__"):
            raise AttributeError(name)
        if inspect.isfunction(inspect.getattr_static(cls, name, None)):
            # A plain method runs in the actor, through a handle. (Returning
            # the function would also make cloudpickle ship methods by
            # reference to this wrapper instead of by value.)
            raise AttributeError(
                f"{name!r} is a method of the actor class {self.__name__}: call it on an "
                f"actor, {self.__name__}.remote().{name}.remote(...)"
            )
        return getattr(cls, name)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise TypeError(
            "Inheriting from actor classes is not currently supported: "
            f"cannot subclass the actor class {self.__name__}; inherit from the plain class "
            f"and decorate the subclass instead (class Sub(Base): ..., then "
            f"rigd.remote(Sub)), keeping the undecorated Base importable"
        )

    def options(self, **options: Any) -> ActorClass[T]:
        """Return this class with some options changed (name, num_cpus, ...).

        Raises:
            TypeError: an unknown option (the message lists the valid ones).
            ValueError: an invalid value.
        """
        return ActorClass(self._cls, self._options.replace(**options))

    def _class_body(self) -> bytes:
        if self._body is None:
            # By value when the class cannot be imported by name in a worker
            # (defined in __main__, in a function, or shadowed by this wrapper).
            self._body = dumps_by_value(self._cls)
        return self._body

    def remote(self, *args: Any, **kwargs: Any) -> ActorProxy[T]:
        """Start an actor of this class; return its handle at once.

        The constructor runs in the actor's own process; if it raises, every
        call on the handle fails with ``ActorDiedError`` naming that error.

        Raises:
            TypeError: an argument cannot be serialized.
            ValueError: the name is taken (without ``get_if_exists``).
            ResourceUnavailableError: more CPUs or GPUs than exist.
        """
        signature, fast_arity = self._init_signature
        check_arguments(signature, fast_arity, f"{self.__name__}.__init__", args, kwargs)
        ray = _session.ray_backend()
        if ray is not None:
            return ray.actor_class_remote(  # type: ignore[no-any-return]
                self._cls, self._options, ray_method_options(self._cls), args, kwargs
            )
        runtime = _session.get_runtime()
        group = getattr(self._options.scheduling_strategy, "placement_group", None)
        if isinstance(group, PlacementGroup):
            index = self._options.scheduling_strategy.placement_group_bundle_index
            opts = self._options
            check_fits(self._cls.__qualname__, group, index, opts.num_cpus or 0, opts.num_gpus)
        args_body = serialize_args(
            self._cls.__init__, f"{self.__name__}.__init__", args, kwargs, runtime.shm_prefix
        )
        actor_id = os.urandom(8).hex()
        info = runtime.head_call(
            CreateActor(
                actor_id,
                self.__name__,
                self._schema,
                self._class_body(),
                args_body,
                self._options,
                runtime.namespace,
            )
        )
        return ActorHandle._from_info(runtime, info)


class ActorHandle(Generic[T]):
    """A handle to one actor: ``handle.method.remote(...)`` calls it.

    Handles can be passed to tasks and to other actors' methods, and returned
    from them. When every handle to a non-detached actor is gone, in every
    process, the actor ends gracefully.
    """

    def __init__(self, runtime: Any, actor_id: str, class_name: str, schema: ActorSchema) -> None:
        self._runtime = runtime
        self._actor_id = actor_id
        self._class_name = class_name
        self._schema = schema
        self._method_names = frozenset(schema.methods)

    @classmethod
    def _from_info(cls, runtime: Any, info: tuple[Any, ...]) -> ActorHandle[T]:
        actor_id, class_name, schema, token = info
        handle: ActorHandle[T] = cls(runtime, actor_id, class_name, schema)
        runtime.acquire_handle(actor_id, token)
        return handle

    def __del__(self) -> None:
        runtime = getattr(self, "_runtime", None)
        if runtime is not None and not runtime.closed:
            runtime.drop_handle(self._actor_id)

    def __repr__(self) -> str:
        return f"ActorHandle({self._class_name}, {self._actor_id})"

    def __getattr__(self, name: str) -> ActorMethod:
        if name.startswith("_") and name not in self._method_names:
            raise AttributeError(name)
        if name not in self._method_names:
            raise AttributeError(
                f"actor class {self._class_name!r} has no method {name!r}; its methods are: "
                f"{', '.join(sorted(n for n in self._method_names if not n.startswith('_')))}"
            )
        # Not cached on the handle: the method refers to the handle, and a
        # cycle would keep the handle (and so the actor) alive until the
        # cyclic garbage collector runs, instead of at the last `del`.
        return ActorMethod(self, name, MethodOptions())

    def __reduce__(self) -> tuple[Any, ...]:
        token = os.urandom(8).hex()
        if not getattr(probing, "active", False):
            self._runtime.lend_handle(self._actor_id, token)
        return (_rebuild_handle, (self._actor_id, self._class_name, self._schema, token))


#: The name Ray's typing guide uses for a handle.
#: A handle as type checkers see it (Ray's ``ActorProxy``): the handle, and
#: the class itself, so that method names and ``@rigd.method`` signatures are
#: checked. At run time it is always an ``ActorHandle``.
ActorProxy: TypeAlias = Union[ActorHandle[T], T]  # noqa: UP007 - a runtime alias must subscript


def _rebuild_handle(
    actor_id: str, class_name: str, schema: ActorSchema, token: str
) -> ActorHandle[Any]:
    runtime = _session.get_runtime()
    return ActorHandle._from_info(runtime, (actor_id, class_name, schema, token))


class ActorMethod:
    """One method of one actor; ``.remote(...)`` calls it."""

    __slots__ = ("_function_name", "_handle", "_name", "_options")

    def __init__(self, handle: ActorHandle[Any], name: str, options: MethodOptions) -> None:
        self._handle = handle
        self._name = name
        self._options = options
        self._function_name = f"{handle._class_name}.{name}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"actor methods cannot be called directly; instead of {self._function_name}(), "
            f"use {self._function_name}.remote()"
        )

    def options(self, **options: Any) -> ActorMethod:
        """Return this method with per-call options (``concurrency_group``, ...)."""
        check_method_options(options, CALL_OPTIONS)
        group = options.get("concurrency_group")
        groups = self._handle._schema.groups
        if group is not None and group not in groups:
            raise ValueError(
                f"{self._function_name} has no concurrency group {group!r}; the actor's groups "
                f"are: {', '.join(sorted(groups)) or '(none declared)'}"
            )
        return ActorMethod(self._handle, self._name, dataclasses.replace(self._options, **options))

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef[Any]:
        """Call the method in the actor's process; return the ref of its result.

        Raises:
            TypeError: an argument cannot be serialized.
        """
        handle = self._handle
        spec = handle._schema.methods[self._name]
        options = self._options
        if spec.fast_arity != len(args) or kwargs:
            check_arguments(spec.signature, spec.fast_arity, self._function_name, args, kwargs)
        num_returns = spec.num_returns if options.num_returns is None else options.num_returns
        try:
            ref = handle._runtime.submit_call(
                handle._actor_id,
                self._name,
                options.name or self._function_name,
                args,
                kwargs,
                options.concurrency_group,
                spec.is_generator or num_returns in ("streaming", "dynamic"),
                handle._schema.enable_task_events
                and spec.enable_task_events
                and options.enable_task_events,
                handle._schema.kind is ActorKind.SERIAL,
            )
        except TypeError as exc:
            raise TypeError(
                unserializable(
                    handle._schema.methods[self._name].params,
                    self._function_name,
                    args,
                    kwargs,
                    exc,
                )
            ) from exc
        if num_returns == 1 or num_returns == "streaming":
            return ref  # type: ignore[no-any-return]
        return split_returns(ref, num_returns, self._function_name)  # type: ignore[no-any-return]
