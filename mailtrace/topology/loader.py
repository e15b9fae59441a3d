"""Load a topology file: YAML → :class:`Topology`, with errors that say where and what.

Every error is a :class:`TopologyError` pointing at ``file:line:column`` (1-based) of
the offending node, found by keeping PyYAML's composed node tree (each node has a start
mark) next to the constructed data:

1. YAML syntax (PyYAML's own marks), an empty file, a top level that is not a mapping,
   several documents;
2. duplicate keys, which PyYAML would silently resolve to the last one;
3. pydantic validation: each error's ``loc`` is walked down the node tree, following
   the model types alongside so that the tags pydantic inserts (the tier kind of a
   discriminated union) are skipped; every error is reported at once, in document order
   (up to :data:`MAX_PROBLEMS`), so a file is fixed in one pass, not one error per run;
4. the flow, checked by :class:`FlowGraph`, whose :class:`FlowError` carries a ``loc``
   that is walked the same way.

Whole-file problems (missing, unreadable, not UTF-8, too large) have no line.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailtrace.topology.flow import ARROW, FlowError, FlowGraph, split_chain
from mailtrace.topology.model import TIER_KINDS, Topology

#: Topology files are small and hand-written; anything bigger is refused unread.
MAX_BYTES = 1024 * 1024

_MERGE_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")

Loc = Sequence[str | int]


#: How many problems of one file are listed; the rest are counted.
MAX_PROBLEMS = 20

Problem = tuple[int | None, int | None, str]  # (line, column, message)


class TopologyError(Exception):
    """A topology that cannot be used, with where (1-based line and column) and why.

    ``line``, ``column`` and ``message`` are the first problem in document order;
    ``problems`` lists every one found (the first included), each rendered on its own line
    as ``file:line:column: message`` — the form editors and CI annotations read.
    """

    def __init__(self, source: str, line: int | None, column: int | None, message: str,
                 more: Sequence[Problem] = ()) -> None:
        super().__init__(source, line, column, message)
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        self.problems: list[Problem] = [(line, column, message), *more]

    def _where(self, line: int | None, column: int | None) -> str:
        if line is None:
            return self.source
        if column is None:
            return f"{self.source}:{line}"
        return f"{self.source}:{line}:{column}"

    def __str__(self) -> str:
        shown = self.problems[:MAX_PROBLEMS]
        lines = [f"{self._where(line, column)}: {message}" for line, column, message in shown]
        if len(self.problems) > len(shown):
            lines.append(f"{self.source}: ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


def load_topology(path: str | Path) -> Topology:
    """Read, parse and validate a topology file."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise TopologyError(source, None, None, "no such file") from None
    except IsADirectoryError:
        raise TopologyError(source, None, None, "is a directory, not a topology file") from None
    except PermissionError:
        raise TopologyError(source, None, None, "permission denied") from None
    except OSError as exc:
        raise TopologyError(source, None, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise TopologyError(source, None, None, _too_large())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TopologyError(
            source,
            None,
            None,
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
        ) from None
    return parse_topology(text, source)


def parse_topology(text: str, source: str = "<string>") -> Topology:
    """Parse and validate topology YAML given as text; ``source`` names it in errors."""
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise TopologyError(source, None, None, _too_large())
    document = Document.compose(text, source)
    try:
        topology = Topology.model_validate(document.data)
    except ValidationError as exc:
        raise document.validation_error(exc.errors()) from None
    try:
        FlowGraph(topology)
    except FlowError as exc:
        raise document.flow_error(exc) from None
    return topology


def topology_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of topology files, for editors and ``mailtrace schema``."""
    schema = Topology.model_json_schema()
    schema.pop("title", None)
    # pydantic expresses the tier-id pattern as patternProperties; make other ids invalid.
    schema["properties"]["tiers"]["additionalProperties"] = False
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mailtrace topology",
        **schema,
    }


def _too_large() -> str:
    return f"larger than {MAX_BYTES} bytes (1 MiB); a topology is a small hand-written file"


# -- YAML, with the node tree kept ----------------------------------------------------------


@dataclass
class _Spot:
    """Where a loc leads: the deepest node reached, its mapping key, the path walked."""

    node: Node
    key: Node | None
    path: list[str | int]
    annotation: Any  # the model type at that node, or None once the walk lost track
    on_key: bool = False  # the loc ends at the mapping key itself, not at its value


@dataclass
class Document:
    source: str
    text: str
    root: MappingNode
    data: dict[Any, Any]
    keys: dict[int, Any]  # id(key node) → the constructed key
    _index: dict[int, dict[tuple[str, Any], tuple[Node, Node]]] = field(default_factory=dict)
    #: The model the document is validated against (other YAML inputs, such as a
    #: precheck change file, reuse the same line reporting).
    model: type[BaseModel] = Topology

    @classmethod
    def compose(cls, text: str, source: str) -> Document:
        loader: yaml.SafeLoader | None = None
        try:
            loader = _Loader(text)
            root = loader.get_single_node()
            if root is None:
                raise TopologyError(
                    source, None, None, "empty file; expected a mapping with keys " + _TOP_KEYS
                )
            keys = _scan_keys(loader, root, source)
            data = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            raise _yaml_error(exc, source) from None
        except yaml.YAMLError as exc:
            raise _reader_error(exc, text, source) from None
        except RecursionError:
            raise TopologyError(source, None, None, "YAML nested too deeply") from None
        finally:
            if loader is not None:
                loader.dispose()
        if not isinstance(root, MappingNode) or not isinstance(data, dict):
            line, column = _position(root)
            raise TopologyError(
                source,
                line,
                column,
                f"expected a mapping with keys {_TOP_KEYS} at the top level, got {_kind_of(data)}",
            )
        return cls(source, text, root, data, keys)

    # -- pydantic errors ---------------------------------------------------------------

    def validation_error(self, errors: list[ErrorDetails]) -> TopologyError:
        """Every validation error, located, in document order (one per place and text)."""
        located = sorted(self._locate_validation(error) for error in errors)
        problems: list[Problem] = []
        seen: set[Problem] = set()
        for _order, line, column, message in located:
            if (line, column, message) not in seen:
                seen.add((line, column, message))
                problems.append((line, column, message))
        first, *more = problems
        return TopologyError(self.source, *first, more)

    def _locate_validation(self, error: ErrorDetails) -> tuple[tuple[int, int], int, int, str]:
        """(document order, line, column, message) of one pydantic error."""
        kind, loc = error["type"], error["loc"]
        ctx = error.get("ctx") or {}
        spot = self.walk(loc)
        where = _dotted(spot.path)
        at_key = False
        order: tuple[int, int] | None = None
        if spot.on_key:
            # A mapping key that is not acceptable (a tier id): point at the key itself.
            where, at_key = _dotted(spot.path[:-1]), True
            raw = spot.key.value if isinstance(spot.key, ScalarNode) else _dotted(spot.path[-1:])
            if kind == "value_error":
                message = f"{where}: {ctx.get('error')}"
            else:
                message = f"{where}: key {raw!r} must be a string; quote it"
        elif kind in ("extra_forbidden", "invalid_key"):
            parent = self.walk(loc[:-1])
            expected = _field_names(parent.annotation)
            name = spot.key.value if isinstance(spot.key, ScalarNode) else loc[-1]
            message = f"unknown key {name!r} in {_dotted(parent.path) or 'the top level'}"
            if expected:
                message += f" (expected one of: {', '.join(expected)})"
                close = difflib.get_close_matches(str(loc[-1]), expected, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            at_key = True
        elif kind == "missing":
            message = f"{where or 'top level'}: missing required key {loc[-1]!r}"
            at_key = True
            # A key is found missing once its mapping ends, so a misspelt key inside the
            # mapping (reported as unknown) comes first in document order.
            order = (spot.node.end_mark.line + 1, spot.node.end_mark.column + 1)
        elif kind == "union_tag_invalid":
            spot = self.walk([*loc, "kind"])
            message = (
                f"{where}.kind: unknown tier kind {ctx.get('tag')!r} "
                f"(expected one of: {', '.join(TIER_KINDS)})"
            )
        elif kind == "union_tag_not_found":
            message = (
                f"{where}: missing required key 'kind' (expected one of: {', '.join(TIER_KINDS)})"
            )
            at_key = True
            order = (spot.node.end_mark.line + 1, spot.node.end_mark.column + 1)
        else:
            message = f"{where or 'top level'}: {_rephrase(error)}"
        # Collections (and empty values) are pointed at by the key that names them,
        # scalars by their value.
        empty = isinstance(spot.node, ScalarNode) and spot.node.value == "" and not spot.node.style
        if not isinstance(spot.node, ScalarNode) or empty:
            at_key = True
        line, column = _position(spot.key if at_key and spot.key is not None else spot.node)
        return order or (line, column), line, column, message

    # -- flow errors -------------------------------------------------------------------

    def flow_error(self, exc: FlowError) -> TopologyError:
        spot = self.walk(exc.loc)
        node = spot.key if exc.at_key and spot.key is not None else spot.node
        line, column = _position(node)
        if exc.segment is not None and isinstance(node, ScalarNode):
            column = self._segment_column(node, exc.segment) or column
        return TopologyError(self.source, line, column, exc.message)

    def _segment_column(self, node: ScalarNode, segment: int) -> int | None:
        """The column of the ``segment``-th tier id of a one-line chain, if it can be told."""
        start, end = node.start_mark, node.end_mark
        if start.line != end.line or node.style not in (None, "'", '"'):
            return None
        raw = self.text[start.index : end.index]
        quote = 1 if node.style else 0
        raw = raw[quote : len(raw) - quote]
        if split_chain(raw) != split_chain(str(node.value)):
            return None  # escapes or folding changed the text; keep the entry's column
        starts = [0, *(match.end() for match in ARROW.finditer(raw))]
        if segment >= len(starts):
            return None
        piece = ARROW.split(raw)[segment]
        offset = starts[segment] + len(piece) - len(piece.lstrip())
        return start.column + 1 + quote + offset

    # -- walking a loc -----------------------------------------------------------------

    def _pairs(self, node: MappingNode) -> dict[tuple[str, Any], tuple[Node, Node]]:
        """The mapping's (key node, value node) by key, built once per mapping: locating
        thousands of errors stays linear (the last duplicate wins, as in PyYAML)."""
        index = self._index.get(id(node))
        if index is None:
            index = {
                _key_token(self.keys[id(k)]): (k, v) for k, v in node.value if id(k) in self.keys
            }
            self._index[id(node)] = index
        return index

    def walk(self, loc: Loc) -> _Spot:
        """Follow ``loc`` down the node tree as far as it goes."""
        spot = _Spot(self.root, None, [], self.model)
        after_dict_key = False  # pydantic follows a dict key with "[key]" for key errors
        for index, element in enumerate(loc):
            lost = spot.annotation is None and index == len(loc) - 1
            if element == "[key]" and (after_dict_key or lost):
                spot.on_key = True
                return spot
            in_dict = get_origin(_unwrap(spot.annotation)) is dict
            annotation, is_tag = _step_type(spot.annotation, element)
            after_dict_key = False
            if is_tag:
                spot.annotation = annotation
                continue
            node = spot.node
            if isinstance(node, MappingNode):
                match = self._pairs(node).get(_token(element))
                if match is not None:
                    spot = _Spot(match[1], match[0], [*spot.path, element], annotation)
                    after_dict_key = in_dict
                    continue
            elif (
                isinstance(node, SequenceNode)
                and type(element) is int
                and 0 <= element < len(node.value)
            ):
                spot = _Spot(node.value[element], None, [*spot.path, element], annotation)
                continue
            # Not a node: a tag pydantic inserted (e.g. 'function-after[...]'), or a key
            # that is missing. Skip it and keep the deepest node reached.
            spot.annotation = None
        return spot


_TOP_KEYS = ", ".join(Topology.model_fields)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose value errors carry the node's position.

    PyYAML's constructors let ValueError and friends escape for values such as
    ``!!int abc``, ``!!timestamp 2001-13-45`` or an integer too long to convert; here
    they become a ConstructorError at the offending node, like any other YAML error.
    """

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value ({type(exc).__name__}: {exc})",
                node.start_mark,
            ) from None


def _scan_keys(loader: yaml.SafeLoader, root: Node, source: str) -> dict[int, Any]:
    """Construct every mapping key, refusing duplicates (PyYAML keeps the last silently)."""
    keys: dict[int, Any] = {}
    duplicates: list[tuple[int, int, str]] = []
    seen_nodes: set[int] = set()  # aliases make the tree a DAG; visit each node once
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[Any, Node] = {}
            for key_node, value_node in node.value:
                stack.extend((key_node, value_node))
                if not isinstance(key_node, ScalarNode) or key_node.tag in _MERGE_TAGS:
                    continue
                key = loader.construct_object(key_node)
                keys[id(key_node)] = key
                try:
                    earlier = first.setdefault(key, key_node)
                except TypeError:
                    continue  # unhashable: the constructor reports it
                if earlier is not key_node:
                    line, column = _position(key_node)
                    at = f"line {_position(earlier)[0]}"
                    if _position(earlier)[0] == line:
                        at += f", column {_position(earlier)[1]}"
                    duplicates.append(
                        (line, column, f"duplicate key {key_node.value!r} (first at {at})")
                    )
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    if duplicates:
        (line, column, message), *more = sorted(duplicates)
        raise TopologyError(source, line, column, message, more)
    return keys


def _position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _key_token(key: Any) -> tuple[str, Any]:
    """How a pydantic loc element names a YAML key.

    pydantic writes a bool key as an int and any other non-str key as its repr; otherwise
    the comparison is type-strict so that the key ``1`` never matches ``"1"``.
    """
    if isinstance(key, bool | int):
        return ("int", int(key))
    if isinstance(key, str):
        return ("str", key)
    return ("str", repr(key))


def _token(element: str | int) -> tuple[str, Any]:
    return ("int", element) if type(element) is int else ("str", element)


def _yaml_error(exc: yaml.MarkedYAMLError, source: str) -> TopologyError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        message = "found a tab character; YAML indentation must use spaces"
    elif exc.context == "expected a single document in the stream":
        message = "expected a single YAML document, but found another one"
    else:
        message = problem
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            message += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        elif exc.context:
            message = f"{exc.context}: {message}"
    if mark is None:
        return TopologyError(source, None, None, message)
    return TopologyError(source, mark.line + 1, mark.column + 1, message)


def _reader_error(exc: yaml.YAMLError, text: str, source: str) -> TopologyError:
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return TopologyError(source, None, None, str(exc))
    before = text[:position]
    breaks = list(_LINE_BREAK.finditer(before))
    line = len(breaks) + 1
    column = position - (breaks[-1].end() if breaks else 0) + 1
    character = getattr(exc, "character", None)
    what = f" U+{character:04X}" if isinstance(character, int) else ""
    return TopologyError(source, line, column, f"character{what} is not allowed in a YAML file")


# -- following pydantic's loc through the model types ----------------------------------------


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` down to the type that matters."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if get_origin(annotation) in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _step_type(annotation: Any, element: str | int) -> tuple[Any, bool]:
    """The type one loc element further down, and whether the element was a union tag."""
    annotation = _unwrap(annotation)
    if annotation is None:
        return None, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(element) if isinstance(element, str) else None
        return (field.annotation if field is not None else None), False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1], False
    if origin is list and args and isinstance(element, int):
        return args[0], False
    if origin in (Union, types.UnionType):
        for member in args:
            member = _unwrap(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                kind = member.model_fields.get("kind")
                if kind is not None and element in get_args(kind.annotation):
                    return member, True
    return None, False


def _field_names(annotation: Any) -> list[str]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for element in path:
        if isinstance(element, int) and not isinstance(element, bool):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text


_MAPPING_TYPES = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _rephrase(error: ErrorDetails) -> str:
    """pydantic's message, made to read as 'expected X, got Y'."""
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in _MAPPING_TYPES:
        return f"expected a mapping, got {_kind_of(value)}"
    message = error["msg"]
    if message.startswith("Input should be "):
        message = "expected " + message.removeprefix("Input should be ").replace("a valid ", "a ")
    elif message[:1].isupper():
        message = message[0].lower() + message[1:]
    shown = f" {value!r}" if isinstance(value, str) and len(value) <= 60 else ""
    if kind in ("literal_error", "enum"):
        message += f", got{shown or ' ' + _kind_of(value)}"
    elif kind.endswith("_type"):
        message += f", got {_kind_of(value)}{shown}"
    return message


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"
