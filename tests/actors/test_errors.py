"""Errors raised by remote code, and every bad input of the actor API."""

from __future__ import annotations

import threading

import pytest

import rigd
from rigd.exceptions import ActorDiedError, RigdError, TaskError


@rigd.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def add(self, n):
        self.value += n
        return self.value

    def fail(self, message):
        raise ValueError(message)


def test_remote_exception_is_a_task_error_and_the_original_class() -> None:
    counter = Counter.remote()

    with pytest.raises(ValueError, match="bad frame") as info:
        rigd.get(counter.fail.remote("bad frame"))

    assert isinstance(info.value, TaskError)
    assert isinstance(info.value, RigdError)
    assert info.value.args == ("bad frame",)


def test_task_error_carries_the_remote_traceback() -> None:
    counter = Counter.remote()

    with pytest.raises(TaskError) as info:
        rigd.get(counter.fail.remote("bad frame"))

    assert "raise ValueError(message)" in info.value.remote_traceback
    assert "Counter.fail" in str(info.value)
    assert "raise ValueError(message)" in str(info.value)


def test_remote_traceback_keeps_file_name_line_and_source_of_code_sent_by_value() -> None:
    # Issue 14, input 1: cloudpickle 3.1.2+ names code it ships "<dynamic-code>".
    # A class whose source is in no file the worker could read (a notebook
    # cell, `python -c`) must still show its file name, line and source line.
    import linecache

    source = (
        "class Cell:\n"
        "    def fail(self):\n"
        "        raise ValueError('from a notebook cell')\n"
        "def task():\n"
        "    raise KeyError('from a task in a cell')\n"
    )
    filename = "<rigd-test-cell-7>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, object] = {"__name__": "rigd_test_cell_module"}
    exec(compile(source, filename, "exec"), namespace)
    cell = rigd.remote(namespace["Cell"]).remote()
    task = rigd.remote(namespace["task"])

    with pytest.raises(TaskError) as actor_info:
        rigd.get(cell.fail.remote(), timeout=30)
    with pytest.raises(TaskError) as task_info:
        rigd.get(task.remote(), timeout=30)

    assert f'File "{filename}", line 3, in fail' in actor_info.value.remote_traceback
    assert "raise ValueError('from a notebook cell')" in actor_info.value.remote_traceback
    assert f'File "{filename}", line 5, in task' in task_info.value.remote_traceback
    assert "raise KeyError('from a task in a cell')" in task_info.value.remote_traceback


def test_remote_traceback_names_the_test_file_of_a_class_defined_in_it() -> None:
    counter = Counter.remote()

    with pytest.raises(TaskError) as info:
        rigd.get(counter.fail.remote("bad frame"), timeout=30)

    assert f'File "{__file__}"' in info.value.remote_traceback
    assert "<dynamic-code>" not in info.value.remote_traceback


def test_constructor_error_fails_every_call_with_actor_died() -> None:
    @rigd.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("camera not found")

        def ping(self):
            return "pong"

    actor = Broken.remote()

    with pytest.raises(ActorDiedError, match="camera not found"):
        rigd.get(actor.ping.remote(), timeout=10)
    with pytest.raises(ActorDiedError, match="constructor raised"):
        rigd.get(actor.ping.remote(), timeout=10)


def test_calling_a_remote_class_directly_is_a_type_error() -> None:
    with pytest.raises(
        TypeError,
        match=r"^actors cannot be instantiated directly; instead of "
        r"Counter\(\), use Counter\.remote\(\)$",
    ):
        Counter()


def test_calling_a_remote_function_directly_is_a_type_error() -> None:
    @rigd.remote
    def f():
        return 1

    with pytest.raises(TypeError, match=r"instead of f\(\), use f\.remote\(\)$"):
        f()


def test_calling_an_actor_method_directly_is_a_type_error() -> None:
    counter = Counter.remote()

    with pytest.raises(TypeError, match=r"use Counter\.add\.remote\(\)$"):
        counter.add(1)


def test_missing_method_is_an_attribute_error_naming_the_class() -> None:
    counter = Counter.remote()

    with pytest.raises(
        AttributeError,
        match=r"^actor class 'Counter' has no method 'increment'; "
        r"its methods are: add, fail$",
    ):
        counter.increment.remote()


def test_unserializable_argument_is_a_type_error_naming_it() -> None:
    counter = Counter.remote()

    with pytest.raises(TypeError, match=r"argument 'n' of Counter\.add\(\) cannot be serialized"):
        counter.add.remote(threading.Lock())


def test_unserializable_constructor_argument_names_the_parameter() -> None:
    with pytest.raises(
        TypeError,
        match=r"argument 'start' of Counter\.__init__\(\) cannot be "
        r"serialized: cannot pickle '_thread\.lock' object",
    ):
        Counter.remote(threading.Lock())


def test_unserializable_task_argument_names_the_parameter() -> None:
    @rigd.remote
    def work(frame, lock):
        return frame

    with pytest.raises(TypeError, match=r"argument 'lock' of work\(\) cannot be serialized"):
        work.remote(1, threading.Lock())


def test_name_already_taken_is_a_value_error_naming_the_existing_actor() -> None:
    first = Counter.options(name="camera").remote()

    with pytest.raises(
        ValueError,
        match=r"^The name 'camera' is already taken in namespace "
        r"'anonymous-[0-9a-f]+' by actor Counter \([0-9a-f]+\); pass "
        r"get_if_exists=True to reuse it, or choose another name$",
    ):
        Counter.options(name="camera").remote()
    assert rigd.get(first.add.remote(1)) == 1


def test_get_actor_of_an_unknown_name_is_a_value_error() -> None:
    rigd.init()

    with pytest.raises(
        ValueError, match=r"^Failed to look up actor with name 'nope' in namespace 'anonymous-"
    ):
        rigd.get_actor("nope")


@pytest.mark.parametrize("thing", [1, "ref", None, [1, 2]])
def test_get_of_something_not_a_ref_is_a_type_error(thing: object) -> None:
    with pytest.raises(TypeError, match=r"rigd\.get takes"):
        rigd.get(thing)  # type: ignore[call-overload]


def test_unknown_actor_option_lists_the_valid_ones() -> None:
    with pytest.raises(
        TypeError,
        match=r"^unknown actor option 'num_cpu'; valid options are: "
        r"concurrency_groups, .*num_cpus.*",
    ):
        Counter.options(num_cpu=1)


def test_unknown_decorator_option_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"^unknown actor option 'restarts'; valid options are: "):
        rigd.remote(restarts=1)(type("A", (), {}))


def test_unknown_task_option_lists_the_valid_ones() -> None:
    with pytest.raises(
        TypeError,
        match=r"^unknown task option 'max_restarts'; valid options are: "
        r"enable_task_events, max_retries, name, num_cpus, num_gpus, num_returns, resources, "
        r"retry_exceptions, scheduling_strategy$",
    ):

        @rigd.remote(max_restarts=1)
        def f():
            return 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_cpus": -1}, r"^num_cpus must be >= 0, got -1$"),
        ({"num_cpus": "two"}, r"^num_cpus must be a number, got 'two'$"),
        ({"max_restarts": -2}, r"^max_restarts must be >= -1, got -2$"),
        ({"max_concurrency": 0}, r"^max_concurrency must be >= 1, got 0$"),
        ({"get_if_exists": True}, r"^get_if_exists=True needs a name"),
        ({"lifetime": "forever"}, r"^lifetime must be 'detached'"),
        ({"num_gpus": 1.5}, r"^num_gpus above 1 must be a whole number, got 1\.5$"),
    ],
)
def test_invalid_actor_option_values_are_rejected_at_options_time(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Counter.options(**options)


def test_too_many_cpus_is_rejected_at_creation_with_the_fix() -> None:
    rigd.init(num_cpus=2)

    with pytest.raises(
        rigd.exceptions.ResourceUnavailableError,
        match=r"^actor Counter asks for num_cpus=4 but this runtime has 2 CPUs; ask "
        r"for fewer, or pass rigd\.init\(num_cpus=\.\.\.\)$",
    ):
        Counter.options(num_cpus=4).remote()


def test_remote_on_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes a class or a function"):
        rigd.remote(42)
