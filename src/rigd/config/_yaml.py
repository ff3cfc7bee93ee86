"""YAML read safely and validated by pydantic, with each key's line.

Used by the pipeline file (``_pipeline_file``), improv's config files
(``_improv``) and the service file (``_service_file``): bounded in memory
and time (no alias bomb), no key given twice, every problem named with file,
line and key.
"""

from __future__ import annotations

import functools
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from rigd._exceptions import PipelineFileError
from rigd.config._wording import NUMBER_ERRORS, keys_at, not_a_number, worded

if TYPE_CHECKING:
    import pydantic

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_YAML_NODES",
    "parse_yaml",
    "read_text_file",
    "validate_data",
    "validate_yaml",
    "where",
]

#: A configuration file larger than this is refused unread (a pipeline file is
#: a few kilobytes; this stops ``/dev/zero`` or a run file given by mistake).
MAX_FILE_BYTES = 4 << 20


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``, a regular file of at most ``MAX_FILE_BYTES``.

    Raises:
        FileNotFoundError: no such file.
        PipelineFileError: a directory or device, too large, or not UTF-8 text;
            the message says which and the fix.
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise PipelineFileError([f"{path} is not a file (a directory or device); name a {what}"])
    if info.st_size > MAX_FILE_BYTES:
        raise PipelineFileError(
            [f"{path} has {info.st_size:,} bytes, more than a {what} ({MAX_FILE_BYTES:,} at most)"]
        )
    data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineFileError(
            [f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"]
        ) from None


_M = TypeVar("_M")


def where(path: str, line: int | None, key: Sequence[Any]) -> str:
    dotted = _dotted(key)
    place = f"{path}, line {line}" if line else path
    return f"{place}, {dotted}" if dotted else place


def _node_lines(node: yaml.Node, key: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            child = (*key, k.value)
            out[child] = k.start_mark.line + 1
            _node_lines(v, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*key, i), out)


def _pydantic_problems(
    error: pydantic.ValidationError,
    path: str,
    lines: dict[tuple[Any, ...], int],
    aliases: Mapping[str, str],
    model: Any = None,
) -> Iterator[str]:
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if p not in ("function-after", "function-before"))
        unknown = item["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        keys = keys_at(model, loc[:-1], aliases) if unknown else None
        # Aliases: pydantic reports the field name; the file says "class".
        loc = tuple(aliases.get(p, p) if isinstance(p, str) else p for p in loc)
        line = None
        for end in range(len(loc), -1, -1):
            line = lines.get(loc[:end])
            if line is not None:
                break
        message = item["msg"].removeprefix("Value error, ")
        if unknown:
            message = f"unknown key {loc[-1]!r}; check its spelling (see the pipeline file format)"
            if keys:
                message += f"; {_dotted(loc[:-1]) or 'the top level'} takes {', '.join(keys)}"
        elif item["type"] == "missing":
            message = f"required key {loc[-1]!r} is missing"
        elif item["type"] in NUMBER_ERRORS:
            message = not_a_number(item["type"], item["input"], loc) or message
        elif item["type"] == "string_pattern_mismatch" and loc and loc[-1] == "name":
            message = (
                f"name {item['input']!r}: use letters, digits and '_', starting with a letter "
                "or '_' (a name is a Python identifier: 'my_camera', not 'my-camera')"
            )
        else:
            message = worded(item["type"], loc, item.get("input")) or message
        yield f"{where(path, line, loc)}: {message}"


def _dotted(key: Sequence[Any]) -> str:
    dotted = ""
    for part in key:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    return dotted


#: The most values a YAML file may hold once its aliases are expanded.
MAX_YAML_NODES = 100_000

#: The tag of YAML's merge key (``<<: *base``): several are merged, none is lost.
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_nodes(
    loader: yaml.SafeLoader,
    root: yaml.Node,
    path: str,
    error: type[PipelineFileError],
    *,
    allow_aliases: bool,
) -> None:
    """Refuse a node graph that expands to more than ``MAX_YAML_NODES`` values,
    or holds itself (a recursive alias), or a mapping that gives a key twice.

    The composed graph shares aliased nodes, so it is small; what it expands
    to is counted without expanding it (each node's size once, memoised).
    A repeated key is refused: YAML's loaders keep the last value silently
    (PyYAML does; the YAML spec says keys are unique), so a second
    ``class:`` would change an actor's class unseen. Checked on the composed
    graph, before merge keys (``<<``) are applied: a key that overrides a
    merged one is not repeated.
    """
    sizes: dict[int, int] = {}
    seen_anchor = False
    recursive = False
    repeated: list[str] = []
    stack: list[tuple[yaml.Node, bool, tuple[Any, ...]]] = [(root, False, ())]
    while stack:
        node, children_done, key = stack.pop()
        if not children_done and id(node) in sizes:
            seen_anchor = True  # a node reached twice: an alias
            recursive = recursive or sizes[id(node)] == 0  # one of its own parents
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        if children_done:
            children = (
                [n for pair in node.value for n in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
            continue
        sizes[id(node)] = 0  # visiting: until its children are done
        stack.append((node, True, key))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for k, v in node.value:
                child = (*key, k.value if isinstance(k, yaml.ScalarNode) else "?")
                stack.append((k, False, child))
                stack.append((v, False, child))
                if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG:
                    name = _key_of(loader, k)
                    line = k.start_mark.line + 1
                    if name in first:
                        lines = (
                            f"lines {first[name]} and {line}"
                            if first[name] != line
                            else f"twice on line {line}"
                        )
                        repeated.append(
                            f"{where(path, line, child)}: key {name!r} is given twice in one "
                            f"mapping ({lines}); YAML would keep the last one silently: "
                            "keep one of them"
                        )
                    else:
                        first[name] = line
        else:
            stack.extend((c, False, (*key, i)) for i, c in enumerate(node.value))
    if seen_anchor and not allow_aliases:
        raise error(
            [
                f"{path}: uses YAML anchors and aliases (& and *), which a pipeline sent over "
                "HTTP may not; write each value out"
            ]
        )
    if recursive:
        raise error(
            [
                f"{path}: a value holds itself (a recursive alias, such as &a [*a]); "
                "a pipeline file's values are trees: write it without the alias"
            ]
        )
    if sizes.get(id(root), 0) > MAX_YAML_NODES:
        raise error(
            [
                f"{path}: holds more than {MAX_YAML_NODES} values"
                + (" once its aliases are expanded" if seen_anchor else "")
                + "; a pipeline file is a few hundred (put large data in a file an "
                "actor reads, not in the pipeline)"
            ]
        )
    if repeated:
        repeated.sort(key=_line_of)  # the walk is depth first, right to left
        raise error(repeated)


def _key_of(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A mapping key as the loaded mapping holds it: ``1`` and ``0x1`` are one key,
    ``1`` and ``"1"`` two."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return loader.construct_object(node)
    except yaml.YAMLError:
        return (node.tag, node.value)  # the constructor says what is wrong, later


def _line_of(problem: str) -> int:
    _, _, rest = problem.partition(", line ")
    digits = rest.split(",", 1)[0]
    return int(digits) if digits.isdigit() else 0


def validate_yaml(
    model: type[_M],
    path: str,
    text: str,
    error: type[PipelineFileError],
    shape: str,
    *,
    allow_aliases: bool = True,
) -> tuple[_M, dict[tuple[Any, ...], int]]:
    """Parse ``text`` as YAML and validate it as ``model``.

    Returns:
        The model, and the line of each key.

    The text is read in bounded memory and time (see ``parse_yaml``).

    Raises:
        error: the YAML or its keys are wrong, one problem per line, each
        naming ``path``, the line and the key.
    """
    data, lines = parse_yaml(path, text, error, shape, allow_aliases=allow_aliases)
    return validate_data(model, path, data, lines, error), lines


def parse_yaml(
    path: str,
    text: str,
    error: type[PipelineFileError],
    shape: str,
    *,
    allow_aliases: bool = True,
) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Parse ``text`` as a YAML mapping; return it and the line of each key.

    The text is read in bounded memory and time: it may hold at most
    ``MAX_YAML_NODES`` values once its aliases are expanded (an alias bomb of
    a few hundred bytes is refused before it is built), and with
    ``allow_aliases=False`` (text that came over HTTP) no anchor or alias at all.
    A mapping that gives a key twice is refused (YAML's loaders keep the last
    value silently).

    Raises:
        error: not YAML (PyYAML's message, naming ``path`` rather than
        ``<unicode string>``), too large or deep, a key given twice (each
        repeat with both its lines), or not a mapping (``shape`` says what it
        should be), naming ``path`` and the line.
    """
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
        root = loader.get_single_node()
        if root is not None:
            _check_nodes(loader, root, path, error, allow_aliases=allow_aliases)
            data = loader.construct_document(root)
        else:
            data = None
    except yaml.YAMLError as exc:
        # PyYAML names text it was given as "<unicode string>": name the file.
        for mark in (getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)):
            if mark is not None:
                mark.name = path
        if isinstance(exc, yaml.reader.ReaderError):
            exc.name = path
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise error([f"{path}{line}: not valid YAML: {exc}"]) from None
    except error:
        raise  # _check_nodes's, before the ValueError below (it is one)
    except RecursionError:
        raise error(
            [f"{path}: nested too deeply to read; a pipeline file is a few levels deep"]
        ) from None
    except ValueError as exc:
        # A value YAML reads but Python cannot hold, e.g. an int of thousands of digits.
        raise error([f"{path}: a value cannot be read: {exc}; write it shorter"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict) or root is None:
        raise error([f"{path}: {shape}"])
    lines: dict[tuple[Any, ...], int] = {}
    _node_lines(root, (), lines)
    return data, lines


def validate_data(
    model: type[_M],
    path: str,
    data: dict[str, Any],
    lines: dict[tuple[Any, ...], int],
    error: type[PipelineFileError],
    aliases: Mapping[str, str] | None = None,
) -> _M:
    """Validate ``data`` (``parse_yaml``'s) as ``model``: a pydantic model, or a
    dataclass whose fields' ``Annotated`` types say their limits
    (``rigd.config._checks``). pydantic is imported here, on the first file.

    Args:
        aliases: ``{field: key}`` where a key of the file is not the field's
            name (``class_path``: ``class``), for the messages.

    Raises:
        error: its keys are wrong, one problem per line, each naming
        ``path``, the line (from ``lines``) and the key.
    """
    import pydantic

    try:
        value: _M = _adapter(model).validate_python(data)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        raise error(list(_pydantic_problems(exc, path, lines, aliases or {}, model))) from None
    return value


@functools.cache
def _adapter(model: type[Any]) -> pydantic.TypeAdapter[Any]:
    """One validator per class, built on first use (building is the costly part)."""
    import pydantic

    return pydantic.TypeAdapter(model)
