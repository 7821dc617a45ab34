"""Errors found in a programme, each pinned to a file position a marketer can open."""

from __future__ import annotations

import msgspec


class Mark(msgspec.Struct, frozen=True):
    """A 1-based position in a source file."""

    file: str
    line: int
    column: int


class Diagnostic(msgspec.Struct, frozen=True, kw_only=True):
    file: str
    line: int
    column: int
    message: str
    rule_id: str | None = None

    @classmethod
    def at(cls, mark: Mark, message: str, rule_id: str | None = None) -> Diagnostic:
        return cls(
            file=mark.file, line=mark.line, column=mark.column, message=message, rule_id=rule_id
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        if self.rule_id is not None:
            return f"{where}: rule '{self.rule_id}': {self.message}"
        return f"{where}: {self.message}"


class ProgramInvalid(Exception):
    """Raised with every problem found, so a marketer can fix them in one pass."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.column))
        super().__init__("\n".join(str(d) for d in self.diagnostics))
