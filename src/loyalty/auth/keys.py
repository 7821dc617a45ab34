"""API key values: generation, hashing, roles. Pure."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

import msgspec

KEY_PREFIX = "lk_"
# What list views show of a key so that operators can tell keys apart.
SHOWN_PREFIX_LENGTH = 10


class Role(StrEnum):
    POS = "pos"
    APP = "app"
    MARKETER = "marketer"
    ADMIN = "admin"


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the key's id, name and role."""

    key_id: int
    name: str
    role: Role

    @property
    def label(self) -> str:
        """How the ledger and version history name who acted (never the secret)."""
        return f"api-key:{self.key_id} ({self.name})"

    def may(self, roles: frozenset[Role]) -> bool:
        return self.role is Role.ADMIN or self.role in roles


class ApiKey(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedKey(msgspec.Struct, frozen=True):
    """A new key: `secret` is shown once and never stored."""

    key: ApiKey
    secret: str


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # A key holds 256 random bits, so a fast hash is enough: there is nothing to
    # brute-force, and a slow password hash would cost milliseconds per request.
    return hashlib.sha256(secret.encode()).hexdigest()
