"""Domain errors: a stable machine-readable code, a human message, the fields at fault.

The domain knows nothing of HTTP; the API maps each kind to a status code.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import msgspec


class ErrorKind(StrEnum):
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAUTHENTICATED = "unauthenticated"
    UNAVAILABLE = "unavailable"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    code: str
    message: str


class LoyaltyError(Exception):
    kind: ErrorKind = ErrorKind.INVALID

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}


class InvalidInput(LoyaltyError):
    kind = ErrorKind.INVALID

    @classmethod
    def from_fields(cls, errors: list[FieldError]) -> InvalidInput:
        names = ", ".join(error.field for error in errors)
        return cls("validation_failed", f"invalid field(s): {names}", errors=errors)


# msgspec reports where a value went wrong as "... - at `$.field[0].sub`".
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


def decoding_error(message: str, path: str = "") -> FieldError:
    """The field at fault in a msgspec decoding message (`path` if it names none)."""
    match = _AT_PATH.search(message)
    path = match["path"] if match else path
    text = message[: match.start()] if match else message
    for pattern, code, message in (
        (_UNKNOWN_FIELD, "unknown_field", "unknown field {!r}"),
        (_MISSING_FIELD, "required", "{} is required"),
    ):
        found = pattern.match(text)
        if found:
            name = f"{path}.{found['name']}" if path else found["name"]
            return FieldError(name, code, message.format(found["name"]))
    return FieldError(path or "body", "invalid", text)


class NotFound(LoyaltyError):
    kind = ErrorKind.NOT_FOUND


class Conflict(LoyaltyError):
    kind = ErrorKind.CONFLICT


class Forbidden(LoyaltyError):
    kind = ErrorKind.FORBIDDEN


class Unauthenticated(LoyaltyError):
    kind = ErrorKind.UNAUTHENTICATED


class Unavailable(LoyaltyError):
    kind = ErrorKind.UNAVAILABLE
