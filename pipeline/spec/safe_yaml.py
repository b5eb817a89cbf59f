"""A bounded YAML reader for scenario, evidence and backtest files.

PyYAML's ``safe_load`` accepts inputs that cost unbounded time and memory or silently lose
data: an alias bomb (a few lines expanding to billions of nodes), a 50 MB file, 900 levels of
nesting (a RecursionError), duplicate keys (the last one wins), an impossible date such as
2026-13-01 (a bare ValueError with no file or line). :func:`load_bounded` rejects each of these
with a :class:`YamlProblem` that says where (line, column, key path) and never quotes the
file's content beyond the offending key or date.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Final

import yaml

#: Largest configuration file read [bytes] (the shipped files are below 20 kB).
MAX_FILE_BYTES: Final[int] = 1_000_000
#: Most alias references (``*name``) in one file.
MAX_ALIASES: Final[int] = 100
#: Deepest nesting of mappings and lists.
MAX_DEPTH: Final[int] = 40
#: Most values (scalars, mappings, lists) after expanding aliases.
MAX_NODES: Final[int] = 200_000


class YamlProblem(ValueError):
    """A file that is not acceptable YAML; ``path`` is the key path to the problem, if known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem, self.line, self.column = problem, line, column
        self.path: list[str] = []
        super().__init__(problem)

    def where(self) -> str:
        """``at line L, column C`` (or empty)."""
        if self.line is None:
            return ""
        return f" at line {self.line}, column {self.column}"


def _problem(text: str, mark: Any) -> YamlProblem:
    if mark is None:
        return YamlProblem(text)
    return YamlProblem(text, mark.line + 1, mark.column + 1)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with an alias budget, a depth limit, no duplicate keys and checked dates."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _problem(
                    f"more than {MAX_ALIASES} aliases (*name)",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _problem(
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise _problem("expected a mapping", node.start_mark)
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    err = _problem(f"duplicate key {_short(key_node.value)!r}", key_node.start_mark)
                    raise err
                seen.add(key)
        self.flatten_mapping(node)
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise _problem("a key must be a plain value", key_node.start_mark)
            try:
                mapping[key] = self.construct_object(value_node, deep=True)
            except YamlProblem as exc:
                exc.path.insert(0, _short(str(key)))
                raise
        return mapping

    def construct_sequence(self, node: Any, deep: bool = False) -> list[Any]:
        items: list[Any] = []
        for index, child in enumerate(node.value):
            try:
                items.append(self.construct_object(child, deep=True))
            except YamlProblem as exc:
                exc.path.insert(0, str(index))
                raise
        return items

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise _problem(
                f"{_short(node.value)!r} is not a valid date ({exc})", node.start_mark
            ) from None


_BoundedLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _BoundedLoader.construct_yaml_timestamp
)
_BoundedLoader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)
_BoundedLoader.add_constructor(
    "tag:yaml.org,2002:seq",
    lambda loader, node: loader.construct_sequence(node),  # type: ignore[arg-type]
)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _count_nodes(data: Any) -> None:
    """Raise once the expanded document holds more than MAX_NODES values (stops early)."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlProblem(f"expands to more than {MAX_NODES:,} values (aliases?)")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def read_text_bounded(path: Path) -> str:
    """The file's text, refusing files above MAX_FILE_BYTES (OSError/UnicodeDecodeError pass)."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise YamlProblem(f"file is larger than {MAX_FILE_BYTES:,} bytes")
    return raw.decode("utf-8")


def load_bounded(text: str) -> Any:
    """Parse one YAML document within the limits above; raises :class:`YamlProblem`.

    Syntax errors are reported with their position and PyYAML's description of the problem,
    never with the text around it (the file may not be a YAML file at all).
    """
    loader = _BoundedLoader(text)
    try:
        data = loader.get_single_data()
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "not valid YAML"
        # PyYAML quotes the offending character or tag; keep the description only.
        problem = re.sub(r"(['\"]).*?\1", "<...>", problem)
        raise _problem(f"invalid YAML: {problem}", exc.problem_mark) from None
    except yaml.YAMLError:
        raise YamlProblem("invalid YAML") from None
    except RecursionError:
        raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    _count_nodes(data)
    return data
