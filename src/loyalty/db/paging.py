"""Opaque cursors for keyset pagination over an increasing integer id."""

from __future__ import annotations

import base64
import binascii

from loyalty.errors import FieldError, InvalidInput

MAX_PAGE_SIZE = 200


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        # isdigit() alone admits "²"; a row id is also a bigint.
        if kind == "id" and value.isascii() and value.isdigit() and int(value) < 2**63:
            return int(value)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidInput.from_fields([FieldError("after", "invalid_cursor", "not a cursor")])


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        message = f"limit must be between 1 and {MAX_PAGE_SIZE}"
        raise InvalidInput.from_fields([FieldError("limit", "invalid_limit", message)])
