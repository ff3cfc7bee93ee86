"""Constraints on the pipeline file's fields, which pydantic applies when it validates.

Each is a marker in a field's ``Annotated`` type (``Annotated[int,
Limits(ge=0)]``) that pydantic asks for its schema
(``__get_pydantic_core_schema__``) when it builds a validator: the classes
that carry them (``rigd.config._pipeline_file``) are plain dataclasses, and a
process that only uses a loaded file (a Ray task of ``rigd reprocess``) never
imports pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

__all__ = ["NO_BOOL", "After", "Before", "Limits"]


class Limits:
    """pydantic's own limits of a value: ``ge``/``gt``/``le`` of a number,
    ``min_length``/``max_length``/``pattern`` of a string or list (as
    ``pydantic.Field`` takes them; its error messages)."""

    def __init__(self, **limits: Any) -> None:
        self.limits = limits

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema: dict[str, Any] = dict(handler(source))
        schema.update(self.limits)
        return schema

    def __repr__(self) -> str:
        return f"Limits({', '.join(f'{k}={v!r}' for k, v in self.limits.items())})"


class After:
    """``check(value)``, run once the value has its type: returns it, or raises
    ``ValueError`` naming the problem and the fix (pydantic's ``AfterValidator``)."""

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


class Before:
    """``convert(value)``, run on the raw value before its type is checked (a
    short form to its long one; pydantic's ``BeforeValidator``)."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.convert, handler(source))


class _NoBool:
    """A number field that refuses YAML's ``true``/``false``: pydantic's lax mode
    reads them as 1 and 0 (``slots: true`` was 1 slot). Text that reads as a
    number still does (``1e3``: PyYAML's text, 1000.0 to pydantic). The error
    is pydantic's ``int_type``/``float_type``, which ``validate_data`` words."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import PydanticCustomError, core_schema

        whole = source is int
        kind, text = ("int_type", "integer") if whole else ("float_type", "number")

        def refuse(value: Any) -> Any:
            if isinstance(value, bool):
                raise PydanticCustomError(kind, f"Input should be a valid {text}")
            return value

        return core_schema.no_info_before_validator_function(refuse, handler(source))


#: Put last in a number field's ``Annotated`` (after its ``Limits``).
NO_BOOL = _NoBool()
