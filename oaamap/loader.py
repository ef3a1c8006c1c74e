"""Stage 1: YAML text -> Document (the data plus the position of every key and value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from .errors import MappingError, MappingErrors, Span
from .limits import MAX_MAPPING_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

__all__ = ["Document", "NodeInfo", "load", "load_text"]

Path_ = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Where a value sits: 1-based line/column of the value and of its key, and its YAML style.

    `style` is the scalar style: None (plain), `'` or `"` (quoted), `|` or `>` (block).
    """

    line: int
    column: int
    key_line: int
    key_column: int
    style: str | None = None
    multiline: bool = False


@dataclass(frozen=True)
class Document:
    """A parsed mapping file: the data and a position index by document path."""

    file: str
    data: Any
    positions: dict[Path_, NodeInfo] = field(repr=False)
    lines: tuple[str, ...] = field(repr=False, default=())

    def _text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def span(self, path: Path_, length: int = 1) -> Span | None:
        """The Span of the value at `path`, or of its nearest located ancestor."""
        info = self._nearest(path)
        if info is None:
            return None
        if length == 1 and not info.multiline:
            value = self.value_at(path)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                length = max(1, len(str(value)) + (2 if info.style in ("'", '"') else 0))
        return Span(self.file, info.line, info.column, length, self._text(info.line))

    def value_at(self, path: Path_) -> Any:
        """The data at a document path, or None when the path does not exist."""
        value = self.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def key_span(self, path: Path_) -> Span | None:
        """The Span of the key at `path` (for unexpected or duplicate keys)."""
        info = self._nearest(path)
        if info is None:
            return None
        length = len(str(path[-1])) if path else 1
        return Span(self.file, info.key_line, info.key_column, length, self._text(info.key_line))

    def expression_span(self, path: Path_, position: int, length: int = 1) -> Span | None:
        """The Span of character `position` of the scalar at `path` (a JMESPath error).

        Plain single-line scalars map directly, quoted ones skip the quote; block and multi-line
        scalars point at the scalar's start.
        """
        info = self._nearest(path)
        if info is None:
            return None
        text = self._text(info.line)
        if info.multiline or info.style in ("|", ">"):
            return Span(self.file, info.line, info.column, 1, text)
        offset = position + (1 if info.style in ("'", '"') else 0)
        return Span(self.file, info.line, info.column + offset, length, text)

    def _nearest(self, path: Path_) -> NodeInfo | None:
        for end in range(len(path), -1, -1):
            info = self.positions.get(tuple(path[:end]))
            if info is not None:
                return info
        return None


def _index(node: yaml.Node, path: Path_, key_mark: yaml.Mark | None,
           out: dict[Path_, NodeInfo], errors: list[MappingError], file: str,
           lines: list[str]) -> None:
    start = node.start_mark
    key = key_mark or start
    style = node.style if isinstance(node, yaml.ScalarNode) else None
    multiline = node.end_mark.line != start.line if isinstance(node, yaml.ScalarNode) else False
    out[path] = NodeInfo(start.line + 1, start.column + 1, key.line + 1, key.column + 1,
                         style, multiline)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            name = key_node.value
            if name in seen:
                first = seen[name]
                errors.append(MappingError(
                    f"duplicate key `{name}` (first defined at line {first.line + 1}; "
                    "YAML would silently keep only the last one)",
                    Span(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                         len(str(name)), lines[key_node.start_mark.line]
                         if key_node.start_mark.line < len(lines) else "")))
            seen[name] = key_node.start_mark
            _index(value_node, (*path, name), key_node.start_mark, out, errors, file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), None, out, errors, file, lines)


class _LimitExceeded(yaml.YAMLError):
    """The YAML goes past a limit on untrusted input; `mark` is where."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit and a budget of expanded nodes.

    The composer recurses once per nesting level, so the depth is checked before going deeper.
    An alias counts as the whole node it repeats, so "billion laughs" documents are refused
    while they are composed, before anything walks the exponential tree.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:
                raise _LimitExceeded(f"the alias `*{event.anchor}` repeats a node that contains "
                                     "it (a recursive document)", event.start_mark)
            return cast(yaml.Node, super().compose_node(parent, index))
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _LimitExceeded(f"the mapping file is nested deeper than {MAX_YAML_DEPTH} "
                                     "levels", self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
        size = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        self._sizes[id(node)] = size
        if size > MAX_YAML_NODES:
            raise _LimitExceeded(f"the mapping file expands to more than {MAX_YAML_NODES:,} "
                                 "values (aliases repeat whole nodes: a \"billion laughs\" "
                                 "document?)", node.start_mark)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _limit_error(e: _LimitExceeded, file: str, lines: list[str]) -> MappingErrors:
    span = None
    if e.mark is not None:
        span = Span(file, e.mark.line + 1, e.mark.column + 1, 1,
                    lines[e.mark.line] if e.mark.line < len(lines) else "")
    return MappingErrors([MappingError(e.message, span)], file)


def _size_error(file: str, first_line: str) -> MappingErrors:
    return MappingErrors([MappingError(
        f"the mapping file is larger than {MAX_MAPPING_BYTES // (1024 * 1024)} MiB; refusing "
        "to read it", Span(file, 1, 1, 1, first_line))], file)


def load_text(text: str, file: str = "<mapping>") -> Document:
    """Parse mapping text into a Document.

    Raises:
        MappingErrors: the YAML is malformed, a key is repeated in one mapping, or the text
            goes past a limit (size, nesting depth, alias expansion; see `limits`).

    Example:
        >>> load_text("oaamap: 1\\ntemplate: hris\\n").span(("template",)).line
        2
    """
    if len(text) > MAX_MAPPING_BYTES:
        raise _size_error(file, text[:200].split("\n", 1)[0])
    lines = text.splitlines()
    loader = _BoundedLoader(text)
    loader.name = file
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _LimitExceeded as e:
        raise _limit_error(e, file, lines) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        span = None
        if mark is not None:
            span = Span(file, mark.line + 1, mark.column + 1, 1,
                        lines[mark.line] if mark.line < len(lines) else "")
        raise MappingErrors([MappingError(f"invalid YAML: {e.problem or e}", span)], file) from e
    except yaml.YAMLError as e:
        raise MappingErrors([MappingError(f"invalid YAML: {e}", None)], file) from e
    finally:
        loader.dispose()
    positions: dict[Path_, NodeInfo] = {}
    errors: list[MappingError] = []
    if node is not None:
        _index(node, (), None, positions, errors, file, lines)
    if errors:
        raise MappingErrors(errors, file)
    return Document(file, data, positions, tuple(lines))


def load(path: Path | str) -> Document:
    """Read and parse a mapping file.

    Raises:
        MappingErrors: the file cannot be read, is larger than `MAX_MAPPING_BYTES`, or is not
            valid YAML.
    """
    shown = str(path)
    try:
        # Read one byte past the limit: a pipe or device has no size to check beforehand.
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_MAPPING_BYTES + 1)
        if len(raw) > MAX_MAPPING_BYTES:
            raise _size_error(shown, raw[:200].decode("utf-8", "replace").split("\n", 1)[0])
        text = raw.decode("utf-8-sig")
    except OSError as e:
        raise MappingErrors([MappingError(f"cannot read the mapping file `{shown}`: {e.strerror}")],
                            shown) from e
    except UnicodeDecodeError as e:
        raise MappingErrors([MappingError(f"the mapping file is not UTF-8: {e}")], shown) from e
    return load_text(text, shown)
