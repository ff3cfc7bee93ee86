"""``@rigd.remote``, and remote functions: ``f.remote()`` runs ``f`` as a task.

Applied to a class, ``remote`` returns an ``ActorClass`` (``_handle``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from rigd.actors import _session
from rigd.actors._arguments import check_serializable
from rigd.actors._handle import ActorClass
from rigd.actors._options import ActorOptions, TaskOptions
from rigd.actors._pickling import dumps_by_value
from rigd.actors._ref import ObjectRef
from rigd.actors._ref_args import placeholders
from rigd.actors._returns import split_returns
from rigd.actors._schema import call_signature, check_arguments

__all__ = ["RemoteFunction", "remote"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class RemoteFunction(Generic[R]):
    """A function made remote: ``.remote(...)`` runs it as a task.

    Tasks run on a pool of worker processes, one per CPU by default.
    """

    def __init__(self, fn: Callable[..., R], options: TaskOptions) -> None:
        self._fn = fn
        self._options = options
        self._body: bytes | None = None
        self._fn_id = ""
        self._signature = call_signature(fn)
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"remote functions cannot be called directly; instead of {self.__name__}(), "
            f"use {self.__name__}.remote()"
        )

    def __repr__(self) -> str:
        return f"RemoteFunction({self._fn.__module__}.{self._fn.__qualname__})"

    def options(self, **options: Any) -> RemoteFunction[R]:
        """Return this function with some options changed.

        Raises:
            TypeError: an unknown option, or an actor-only one.
        """
        return RemoteFunction(self._fn, self._options.replace(**options))

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef[R]:
        """Run the function as a task; return the ref of its result.

        Raises:
            TypeError: an argument cannot be serialized.
        """
        signature, fast_arity = self._signature
        check_arguments(signature, fast_arity, self.__name__, args, kwargs)
        runtime = _session.get_runtime()
        if self._body is None:
            self._body = dumps_by_value(self._fn)
            import hashlib  # here: hashlib costs a worker 3-6 ms to import

            self._fn_id = hashlib.blake2b(self._body, digest_size=12).hexdigest()
        # Check the arguments here, so a bad one fails at the call site.
        check_serializable(self._fn, self.__name__, placeholders(args), kwargs, runtime.shm_prefix)
        opts = self._options
        ref = runtime.submit_task(
            self._fn_id,
            self._body,
            opts.name or self.__name__,
            args,
            kwargs,
            opts.num_cpus,
            opts.max_retries,
            opts.enable_task_events,
            num_gpus=opts.num_gpus,
            streaming=inspect.isgeneratorfunction(self._fn)
            or inspect.isasyncgenfunction(self._fn)
            or opts.num_returns in ("streaming", "dynamic"),
            retry_exceptions=opts.retry_exceptions,
        )
        if opts.num_returns == 1 or opts.num_returns == "streaming":
            return ref  # type: ignore[no-any-return]
        return split_returns(ref, opts.num_returns, self.__name__)  # type: ignore[no-any-return]


@overload
def remote(target: type[T], /) -> ActorClass[T]: ...  # type: ignore[overload-overlap]
@overload
def remote(target: Callable[P, R], /) -> RemoteFunction[R]: ...
@overload
def remote(**options: Any) -> Callable[[Any], Any]: ...


def remote(*args: Any, **options: Any) -> Any:
    """Make a class an actor class, or a function a remote function.

    Usable as ``@rigd.remote``, ``@rigd.remote(num_cpus=1, ...)`` or
    ``rigd.remote(Counter)``.

    Raises:
        TypeError: applied to something else, or an unknown option.
        ValueError: an invalid option value.
    """
    if len(args) == 1 and not options and (inspect.isclass(args[0]) or callable(args[0])):
        return _make_remote(args[0], {})
    if args:
        raise TypeError(
            "rigd.remote takes a class or a function, or only keyword options, e.g. "
            "@rigd.remote(num_cpus=1)"
        )
    if not options:
        # As in Ray: `@rigd.remote()` is almost always a typo for `@rigd.remote`.
        raise TypeError(
            "@rigd.remote() needs options or no parentheses: write @rigd.remote, or "
            "@rigd.remote(num_cpus=1, ...)"
        )

    def decorate(target: Any) -> Any:
        return _make_remote(target, options)

    return decorate


def _make_remote(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        return ActorClass(target, ActorOptions().replace(**options))
    if inspect.iscoroutinefunction(target):
        # ValueError, as Ray raises.
        raise ValueError(
            f"{target.__qualname__} is an `async def` function, which cannot be a remote "
            "function (a task); make it a plain function that calls asyncio.run(...), or "
            "make it a method of an async actor"
        )
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        return RemoteFunction(target, TaskOptions().replace(**options))
    raise TypeError(f"rigd.remote takes a class or a function, got {target!r}")
