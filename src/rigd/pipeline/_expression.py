"""Trigger conditions: a small, safe expression language over per-frame values.

An expression such as ``max > 1.5 * mean_of_last(max, 50) and mean > 100``
is parsed with Python's own parser (``ast``) and checked node by node: only
numbers, the value names given, arithmetic (``+ - * /``), comparisons
(chains too), ``and``/``or``/``not``, and the functions below are allowed.
Nothing is ever passed to ``eval``; a name, an attribute, a subscript, a
string or any other call is refused with the column where it stands.

It is evaluated with an array module: numpy for values on the host, CuPy
for values on the GPU (a GPU actor decides without copying the frame back,
only the one boolean). Functions over the recent past:

- ``mean_of_last(NAME, N)``, ``max_of_last``, ``min_of_last``,
  ``std_of_last``: over the N values of NAME before the current one (NaN
  until there is one, and a comparison with NaN is false: no trigger while
  the history fills);
- ``abs(x)``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rigd._exceptions import ExpressionError

__all__ = ["Expression", "ExpressionError", "History"]

_MAX_TEXT = 1000
_MAX_NODES = 200
_MAX_HISTORY = 100_000
_HISTORY_FUNCTIONS = ("mean_of_last", "max_of_last", "min_of_last", "std_of_last")

Node = Callable[[dict[str, Any]], Any]


class Expression:
    """A compiled trigger condition.

    Args:
        text: the expression, e.g. ``"max > 1.5 * mean_of_last(max, 50)"``.
        names: the value names it may use (e.g. a records stream's fields).

    Raises:
        ExpressionError: bad syntax, a name not in ``names``, or anything
            outside the language (module documentation), with its column.
    """

    def __init__(self, text: str, names: Sequence[str]) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError("a trigger expression is text, e.g. 'max > 1000'")
        if len(text) > _MAX_TEXT:
            raise ExpressionError(f"a trigger expression is at most {_MAX_TEXT} characters")
        self.text = text
        self.names = tuple(names)
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(
                f"trigger expression {text!r} is not well formed at column {exc.offset}: {exc.msg}"
            ) from None
        if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
            raise ExpressionError(
                f"trigger expression {text!r} is too long (over {_MAX_NODES} parts)"
            )
        #: Names whose past values a history function needs, and how many.
        self.history: dict[str, int] = {}
        #: Names the expression reads.
        self.used: set[str] = set()
        self._root = self._compile(tree.body)

    # -- evaluation --------------------------------------------------------------

    def evaluate(self, xp: Any, values: Mapping[str, Any], past: Mapping[str, Any]) -> Any:
        """The condition (a 0-d boolean in ``xp``) for ``values``, with
        ``past[name]`` the previous values of each name in ``history``
        (an ``xp`` array, oldest first; may be shorter than asked)."""
        return self._root({"xp": xp, "values": values, "past": past})

    def holds(self, xp: Any, values: Mapping[str, Any], past: Mapping[str, Any]) -> bool:
        """``evaluate`` as a host boolean. A division by zero gives inf or NaN
        (numpy's rule), never an error that would stop the actor."""
        with np.errstate(all="ignore"):
            return bool(self.evaluate(xp, values, past))

    # -- compiling ---------------------------------------------------------------

    def _refuse(self, node: ast.AST, what: str) -> ExpressionError:
        column = getattr(node, "col_offset", 0) + 1
        allowed = ", ".join(self.names)
        return ExpressionError(
            f"trigger expression {self.text!r}, column {column}: {what}. Allowed: numbers, "
            f"the values ({allowed}), + - * /, comparisons, and/or/not, abs() and "
            f"{', '.join(f + '(NAME, N)' for f in _HISTORY_FUNCTIONS)}"
        )

    def _compile(self, node: ast.AST) -> Node:
        handler = getattr(self, f"_c_{type(node).__name__}", None)
        if handler is None:
            raise self._refuse(node, f"{type(node).__name__} is not allowed")
        compiled: Node = handler(node)
        return compiled

    def _c_Constant(self, node: ast.Constant) -> Node:  # noqa: N802 - named after ast's node
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._refuse(node, f"{value!r} is not a number")
        number = float(value)
        return lambda env: number

    def _c_Name(self, node: ast.Name) -> Node:  # noqa: N802
        name = node.id
        if name not in self.names:
            raise self._refuse(node, f"{name!r} is not a value here")
        self.used.add(name)
        return lambda env: env["values"][name]

    def _c_UnaryOp(self, node: ast.UnaryOp) -> Node:  # noqa: N802
        operand = self._compile(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda env: env["xp"].logical_not(operand(env))
        raise self._refuse(node, "only -, + and not apply to one value")

    def _c_BinOp(self, node: ast.BinOp) -> Node:  # noqa: N802
        left, right = self._compile(node.left), self._compile(node.right)
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b,
        }
        op = ops.get(type(node.op))
        if op is None:
            raise self._refuse(node, f"the operator {type(node.op).__name__} is not allowed")
        return lambda env: op(left(env), right(env))

    def _c_BoolOp(self, node: ast.BoolOp) -> Node:  # noqa: N802
        parts = [self._compile(v) for v in node.values]
        combine = "logical_and" if isinstance(node.op, ast.And) else "logical_or"

        def run(env: dict[str, Any]) -> Any:
            fn = getattr(env["xp"], combine)
            result = parts[0](env)
            for part in parts[1:]:
                result = fn(result, part(env))
            return result

        return run

    def _c_Compare(self, node: ast.Compare) -> Node:  # noqa: N802
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b,
            ast.GtE: lambda a, b: a >= b,
            ast.Eq: lambda a, b: a == b,
            ast.NotEq: lambda a, b: a != b,
        }
        terms = [self._compile(node.left), *(self._compile(c) for c in node.comparators)]
        tests = []
        for op in node.ops:
            fn = ops.get(type(op))
            if fn is None:
                raise self._refuse(node, f"the comparison {type(op).__name__} is not allowed")
            tests.append(fn)

        def run(env: dict[str, Any]) -> Any:
            values = [t(env) for t in terms]
            result = tests[0](values[0], values[1])
            for k in range(1, len(tests)):
                result = env["xp"].logical_and(result, tests[k](values[k], values[k + 1]))
            return result

        return run

    def _c_Call(self, node: ast.Call) -> Node:  # noqa: N802
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self._refuse(node, "only abs() and the *_of_last functions may be called")
        name = node.func.id
        if name == "abs":
            if len(node.args) != 1:
                raise self._refuse(node, "abs takes one value")
            arg = self._compile(node.args[0])
            return lambda env: env["xp"].abs(arg(env))
        if name not in _HISTORY_FUNCTIONS:
            raise self._refuse(node, f"{name}() is not a function here")
        if (
            len(node.args) != 2
            or not isinstance(node.args[0], ast.Name)
            or not isinstance(node.args[1], ast.Constant)
            or not isinstance(node.args[1].value, int)
            or isinstance(node.args[1].value, bool)
            or not 1 <= node.args[1].value <= _MAX_HISTORY
        ):
            raise self._refuse(
                node, f"{name} takes a value's name and a whole number from 1 to {_MAX_HISTORY}"
            )
        field = node.args[0].id
        if field not in self.names:
            raise self._refuse(node.args[0], f"{field!r} is not a value here")
        count = int(node.args[1].value)
        self.history[field] = max(self.history.get(field, 0), count)
        self.used.add(field)
        reduce = name.split("_", 1)[0]  # mean, max, min, std

        def run(env: dict[str, Any]) -> Any:
            xp = env["xp"]
            past = env["past"][field]
            recent = past[-count:]
            if len(recent) == 0:
                return xp.float64("nan")
            return getattr(xp, reduce)(recent)

        return run


class History:
    """The recent values of each name an expression looks back on, in ``xp``
    (on the device for CuPy: nothing comes back to the host).

    Each name keeps its last N values in a buffer of 2N written twice, so the
    last values are always one contiguous slice, oldest first.
    """

    def __init__(self, xp: Any, lengths: Mapping[str, int]) -> None:
        self.xp = xp
        self._n = dict(lengths)
        self._buffers = {name: xp.zeros(2 * n, xp.float64) for name, n in lengths.items()}
        self.count = 0

    def past(self) -> dict[str, Any]:
        """The values before the current one, by name (oldest first)."""
        out = {}
        for name, buffer in self._buffers.items():
            n = self._n[name]
            filled = min(self.count, n)
            end = (self.count - 1) % n + n + 1 if self.count else n
            out[name] = buffer[end - filled : end]
        return out

    def push(self, values: Mapping[str, Any]) -> None:
        """Add the current values (after the expression was evaluated)."""
        for name, buffer in self._buffers.items():
            n = self._n[name]
            at = self.count % n
            buffer[at] = values[name]
            buffer[at + n] = values[name]
        self.count += 1
