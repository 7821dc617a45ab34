"""API key use cases: create, list, revoke, and authenticate with a short-lived cache."""

from __future__ import annotations

import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping

from loyalty.auth.keys import (
    SHOWN_PREFIX_LENGTH,
    ApiKey,
    IssuedKey,
    Principal,
    Role,
    hash_secret,
    new_secret,
)
from loyalty.clock import Clock
from loyalty.db.engine import Database
from loyalty.db.schema import api_keys
from loyalty.errors import FieldError, InvalidInput, NotFound

_CACHE_LIMIT = 10_000


class ApiKeyService:
    def __init__(self, db: Database, clock: Clock, cache_seconds: float) -> None:
        self._db = db
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def create(self, name: str, role: str) -> IssuedKey:
        name = name.strip()
        errors = []
        if not 1 <= len(name) <= 100:
            errors.append(FieldError("name", "invalid_length", "name must be 1-100 characters"))
        if role not in Role.__members__.values():
            roles = ", ".join(Role)
            errors.append(FieldError("role", "unknown_role", f"role must be one of: {roles}"))
        if errors:
            raise InvalidInput.from_fields(errors)
        secret = new_secret()
        values = {
            "name": name,
            "role": role,
            "prefix": secret[:SHOWN_PREFIX_LENGTH],
            "key_hash": hash_secret(secret),
            "created_at": self._clock.now(),
        }
        async with self._db.write() as conn:
            row = (await conn.execute(insert(api_keys).values(values).returning(api_keys))).one()
        return IssuedKey(key=_to_key(row._mapping), secret=secret)

    async def list(self) -> list[ApiKey]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(api_keys).order_by(api_keys.c.id))
        return [_to_key(row._mapping) for row in rows]

    async def revoke(self, key_id: int) -> ApiKey:
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id)
                    # Revoking again keeps the first revocation's time.
                    .values(revoked_at=func.coalesce(api_keys.c.revoked_at, self._clock.now()))
                    .returning(api_keys)
                )
            ).one_or_none()
            if row is None:
                raise NotFound("api_key_not_found", f"no API key with id {key_id}")
        self._cache.clear()
        return _to_key(row._mapping)

    async def authenticate(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(api_keys.c.id, api_keys.c.name, api_keys.c.role).where(
                        api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).one_or_none()
        principal = None if row is None else Principal(row.id, row.name, Role(row.role))
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_seconds, principal)
        return principal


def _to_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
