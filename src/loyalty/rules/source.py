"""Read programme YAML into plain values, remembering where every key and value came from.

Later stages work on plain dicts and lists (so msgspec can convert them), and use the
marks recorded here to point each diagnostic at file:line:column, including in files
pulled in with `include:`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import ScalarNode

from .diagnostics import Diagnostic, Mark

PathKey = tuple[str | int, ...]
Reader = Callable[[str], str]

# Sections an included file may contribute; scalars such as `currency` stay in the main
# file so a programme's identity is never split across files.
INCLUDABLE_LISTS = ("rules", "tests", "tiers")
INCLUDABLE_MAPPINGS = ("stores", "custom_dates")


class _Constructor(RoundTripConstructor):
    """Keeps numbers exact (Decimal, never float) and timestamps as their source text.

    ruamel turns timestamps into naive datetimes and floats into binary floats; both lose
    what the marketer wrote, so msgspec parses the original text instead.
    """


def _construct_text(constructor: RoundTripConstructor, node: ScalarNode) -> str:
    return str(constructor.construct_scalar(node))


def _construct_decimal(constructor: RoundTripConstructor, node: ScalarNode) -> Decimal | str:
    text = str(constructor.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_Constructor.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    return yaml


@dataclass
class SourceTree:
    """A programme's merged plain data plus the position of every node."""

    data: Any = None
    value_marks: dict[PathKey, Mark] = field(default_factory=dict)
    key_marks: dict[PathKey, Mark] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    main_file: str = "<string>"

    def mark(self, path: PathKey) -> Mark:
        """Position of the value at `path`, or of its nearest located ancestor."""
        for cut in range(len(path), -1, -1):
            found = self.value_marks.get(path[:cut])
            if found is not None:
                return found
        return Mark(self.main_file, 1, 1)

    def key_mark(self, path: PathKey) -> Mark:
        return self.key_marks.get(path) or self.mark(path)


class _Loader:
    def __init__(self, tree: SourceTree, errors: list[Diagnostic], reader: Reader) -> None:
        self.tree = tree
        self.errors = errors
        self.reader = reader
        self.loading: list[str] = []

    def parse(self, text: str, name: str) -> tuple[Any, dict[PathKey, Mark], dict[PathKey, Mark]]:
        self.tree.texts[name] = text
        try:
            node = _yaml().load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            self.errors.append(Diagnostic.at(Mark(name, line, column), f"YAML syntax: {problem}"))
            return None, {}, {}
        values: dict[PathKey, Mark] = {(): Mark(name, 1, 1)}
        keys: dict[PathKey, Mark] = {}
        data = _plain(node, (), name, values, keys)
        return data, values, keys

    def load(self, text: str, name: str) -> None:
        data, values, keys = self.parse(text, name)
        self.tree.data, self.tree.value_marks, self.tree.key_marks = data, values, keys
        self.tree.main_file = name
        if isinstance(data, dict):
            self.loading.append(name)
            self._includes(data, name, values)

    def _includes(self, data: dict[str, Any], name: str, marks: dict[PathKey, Mark]) -> None:
        """Load the files `data` includes; `marks` are the positions within file `name`."""
        raw = data.pop("include", None)
        if raw is None:
            return
        targets = [raw] if isinstance(raw, str) else raw
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            self._error(marks, ("include",), "include: expected a file name or a list of them")
            return
        for index, target in enumerate(targets):
            where = ("include",) if isinstance(raw, str) else ("include", index)
            self._include_one(target, marks.get(where, Mark(name, 1, 1)), name)

    def _include_one(self, target: str, where: Mark, parent: str) -> None:
        display = posixpath.normpath(posixpath.join(posixpath.dirname(parent), target))
        if display in self.loading:
            self._fail(where, f"include cycle: '{target}' is already being included")
            return
        try:
            text = self.reader(display)
        except (OSError, KeyError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else None
            self._fail(where, f"cannot include '{target}': {reason or 'no such file'}")
            return
        data, values, keys = self.parse(text, display)
        if data is None:
            return
        if not isinstance(data, dict):
            self._fail(where, f"included file '{target}' must be a mapping")
            return
        self.loading.append(display)
        self._includes(data, display, values)
        self.loading.pop()
        self._merge(data, values, keys, display)

    def _merge(
        self,
        data: dict[str, Any],
        values: dict[PathKey, Mark],
        keys: dict[PathKey, Mark],
        display: str,
    ) -> None:
        main = self.tree.data
        for section, content in data.items():
            key_mark = keys.get((section,), Mark(display, 1, 1))
            if section in INCLUDABLE_LISTS and isinstance(content, list):
                existing = main.setdefault(section, [])
                if not isinstance(existing, list):
                    continue
                offset = len(existing)
                existing.extend(content)
                self._copy_marks(values, keys, section, lambda p, o=offset: (p[0] + o, *p[1:]))
            elif section in INCLUDABLE_MAPPINGS and isinstance(content, dict):
                existing = main.setdefault(section, {})
                if not isinstance(existing, dict):
                    continue
                for name in content:
                    if name in existing:
                        mark = keys.get((section, name), key_mark)
                        self.errors.append(
                            Diagnostic.at(mark, f"{section}: '{name}' is already defined")
                        )
                existing.update(content)
                self._copy_marks(values, keys, section, lambda p: p)
            else:
                allowed = ", ".join((*INCLUDABLE_LISTS, *INCLUDABLE_MAPPINGS))
                self.errors.append(
                    Diagnostic.at(
                        key_mark, f"'{section}' cannot come from an included file ({allowed} can)"
                    )
                )

    def _copy_marks(
        self,
        values: dict[PathKey, Mark],
        keys: dict[PathKey, Mark],
        section: str,
        shift: Any,
    ) -> None:
        for source, target in ((values, self.tree.value_marks), (keys, self.tree.key_marks)):
            for path, mark in source.items():
                if len(path) > 1 and path[0] == section:
                    target[(section, *shift(path[1:]))] = mark
        self.tree.key_marks.setdefault((section,), keys.get((section,), Mark("", 1, 1)))

    def _error(self, marks: dict[PathKey, Mark], path: PathKey, message: str) -> None:
        self._fail(marks.get(path, Mark(self.tree.main_file, 1, 1)), message)

    def _fail(self, mark: Mark, message: str) -> None:
        self.errors.append(Diagnostic.at(mark, message))


def _plain(
    node: Any,
    path: PathKey,
    name: str,
    values: dict[PathKey, Mark],
    keys: dict[PathKey, Mark],
) -> Any:
    if isinstance(node, CommentedMap):
        values.setdefault(path, Mark(name, node.lc.line + 1, node.lc.col + 1))
        result: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            key_line, key_col = node.lc.key(key)
            value_line, value_col = node.lc.value(key)
            keys[child] = Mark(name, key_line + 1, key_col + 1)
            values[child] = Mark(name, value_line + 1, value_col + 1)
            result[str(key)] = _plain(node[key], child, name, values, keys)
        return result
    if isinstance(node, CommentedSeq):
        values.setdefault(path, Mark(name, node.lc.line + 1, node.lc.col + 1))
        items: list[Any] = []
        for index, item in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            values[child] = Mark(name, line + 1, col + 1)
            items.append(_plain(item, child, name, values, keys))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    return node


def read_disk(display: str) -> str:
    return Path(display).read_text(encoding="utf-8")


def load_text(text: str, name: str, reader: Reader) -> tuple[SourceTree, list[Diagnostic]]:
    """Parse `text` (shown as `name`); `reader` fetches included files by their path
    relative to the directory of `name`, e.g. `rules/festivals.yaml`."""
    tree = SourceTree(main_file=name)
    errors: list[Diagnostic] = []
    _Loader(tree, errors, reader).load(text, name)
    if tree.data is None and not errors:
        errors.append(Diagnostic.at(Mark(name, 1, 1), "the programme file is empty"))
    return tree, errors
