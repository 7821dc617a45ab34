"""Turn the plain YAML tree into schema Structs, reporting every problem with its position.

msgspec stops at the first error of a conversion, so this converts field by field (and
rule by rule) to report as many problems as possible in one run, and walks the tree
beforehand to name unknown fields and misspelt choices with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from .diagnostics import Diagnostic
from .source import PathKey, SourceTree

_PATH_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_FRIENDLY = (
    (re.compile(r"Expected `(.+)`, got `(.+)`"), r"expected \1, got \2"),
    (re.compile(r"Object missing required field `(.+)`"), r"missing required field '\1'"),
    (
        re.compile(r"Invalid RFC3339 encoded datetime"),
        "expected a date-time with a UTC offset, like 2025-11-11T00:00:00+08:00",
    ),
    (re.compile(r"Invalid RFC3339 encoded date"), "expected a date like 2025-11-11"),
    (re.compile(r"Invalid decimal string"), 'expected a decimal number, like "1.50"'),
)


def did_you_mean(word: str, choices: list[str]) -> str:
    """A hint for a misspelling, or for a partial name ('Spring Festival' is part of
    'Chinese New Year (Spring Festival)')."""
    lowered = word.lower()
    close = sorted(c for c in choices if len(word) > 3 and lowered in c.lower())[:1]
    if not close:
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class Structurer:
    def __init__(self, tree: SourceTree, errors: list[Diagnostic]) -> None:
        self.tree = tree
        self.errors = errors

    def error(self, path: PathKey, message: str, rule_id: str | None, key: bool = False) -> None:
        mark = self.tree.key_mark(path) if key else self.tree.mark(path)
        self.errors.append(Diagnostic.at(mark, message, rule_id))

    # -- pre-walk: unknown fields and misspelt choices -------------------------------------

    def check_shape(self, data: Any, info: mi.Type, path: PathKey, rule_id: str | None) -> bool:
        """Report unknown keys and bad choices; returns False if something was reported."""
        if isinstance(info, mi.UnionType):
            chosen = self._pick(data, info)
            return chosen is None or self.check_shape(data, chosen, path, rule_id)
        if isinstance(info, mi.StructType) and isinstance(data, dict):
            return self._check_struct(data, info, path, rule_id)
        if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType) and isinstance(data, list):
            results = [
                self.check_shape(item, info.item_type, (*path, i), _id_of(item) or rule_id)
                for i, item in enumerate(data)
            ]
            return all(results)
        if isinstance(info, mi.DictType) and isinstance(data, dict):
            results = [
                self.check_shape(v, info.value_type, (*path, k), rule_id) for k, v in data.items()
            ]
            return all(results)
        if isinstance(info, mi.LiteralType) and isinstance(data, str):
            choices = [str(v) for v in info.values]
            if data not in choices:
                field = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
                self.error(
                    path,
                    f"{field}: unknown value '{data}'{did_you_mean(data, choices)}"
                    f" (choices: {', '.join(choices)})",
                    rule_id,
                )
                return False
        return True

    def _check_struct(
        self, data: dict[str, Any], info: mi.StructType, path: PathKey, rule_id: str | None
    ) -> bool:
        fields = {f.encode_name: f for f in info.fields}
        ok = True
        for key in list(data):
            field = fields.get(key)
            if field is None:
                self.error(
                    (*path, key),
                    f"unknown field '{key}'{did_you_mean(key, list(fields))}",
                    rule_id,
                    key=True,
                )
                del data[key]
                ok = False
            elif not self.check_shape(data[key], field.type, (*path, key), rule_id):
                ok = False
        return ok

    @staticmethod
    def _pick(data: Any, union: mi.UnionType) -> mi.Type | None:
        for member in union.types:
            if isinstance(data, dict) and isinstance(member, mi.StructType | mi.DictType):
                return member
            if isinstance(data, list) and isinstance(member, mi.ListType | mi.VarTupleType):
                return member
            if isinstance(data, str) and isinstance(member, mi.LiteralType):
                return member
        return None

    # -- conversion ------------------------------------------------------------------------

    def convert(self, data: Any, cls: type[Any], path: PathKey, rule_id: str | None) -> Any:
        """Convert field by field so one bad field does not hide the others."""
        if not isinstance(data, dict):
            self.error(path, f"expected a mapping, got {_type_name(data)}", rule_id)
            return None
        ok = True
        for field in msgspec.structs.fields(cls):
            if field.encode_name not in data:
                if field.required:
                    self.error(path, f"missing required field '{field.encode_name}'", rule_id)
                    ok = False
                continue
            where = (*path, field.encode_name)
            value = data[field.encode_name]
            item_cls = _struct_list_item(field.type)
            if item_cls is not None and isinstance(value, list):
                converted = [
                    self.convert(item, item_cls, (*where, i), _id_of(item) or rule_id)
                    for i, item in enumerate(value)
                ]
                ok = ok and all(c is not None for c in converted)
            elif not self._convert_value(value, field.type, where, rule_id):
                ok = False
        if not ok:
            return None
        try:
            return msgspec.convert(data, cls)
        except (msgspec.ValidationError, ValueError) as exc:
            self._report(exc, path, rule_id)
            return None

    def _convert_value(self, value: Any, kind: Any, path: PathKey, rule_id: str | None) -> bool:
        try:
            msgspec.convert(value, kind)
        except (msgspec.ValidationError, ValueError) as exc:
            self._report(exc, path, rule_id)
            return False
        return True

    def _report(self, exc: Exception, base: PathKey, rule_id: str | None) -> None:
        text = str(exc)
        message, _, where = text.partition(" - at `")
        path = list(base)
        for name, index in _PATH_SEGMENT.findall(where.rstrip("`").removeprefix("$")):
            path.append(int(index) if index else name)
        for pattern, replacement in _FRIENDLY:
            if pattern.fullmatch(message):
                message = pattern.sub(replacement, message)
                break
        message = message.replace(" | null", "").replace("`", "'")
        self.error(tuple(path), message, rule_id)


def _struct_list_item(kind: Any) -> type[Any] | None:
    args = getattr(kind, "__args__", ())
    origin = getattr(kind, "__origin__", None)
    if (
        origin is list
        and args
        and isinstance(args[0], type)
        and issubclass(args[0], msgspec.Struct)
    ):
        return args[0]
    return None


def _id_of(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return str(item["id"])
    return None
