"""Many events in one call, each with its own idempotency key and its own outcome.

A member's events are recorded in the order given, in write transactions of up to
`chunk` events; a refused event rolls back alone while the others of its transaction
commit together (one commit per chunk instead of one per event). On PostgreSQL the
members are spread over a few lanes whose chunks run concurrently. A chunk first locks
the balance rows of every member it names, in member order, the lock order of the
ledger jobs, so that it cannot deadlock with them; should PostgreSQL still pick it as a
deadlock or serialization victim, the whole chunk rolled back and is simply run again
(its events' keys were released with it).
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from loyalty.auth.keys import Principal
from loyalty.db.engine import Database, is_transient
from loyalty.db.schema import members
from loyalty.errors import FieldError, InvalidInput, LoyaltyError, decoding_error
from loyalty.ledger import book
from loyalty.ledger.events import EventService, Prepared, Recorded
from loyalty.ledger.model import EventIn

MAX_EVENTS = 1000
CHUNK = 100
# Chunks of different members run side by side on PostgreSQL (a member's events all go
# to one lane, in order); SQLite has one writer at a time anyway.
LANES = 4
ATTEMPTS = 3
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class KeyedEventIn(EventIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An event of a batch: the event's own fields plus its idempotency key."""

    idempotency_key: Key | None = None


_EVENT_FIELDS = EventIn.__struct_fields__


@dataclass(frozen=True)
class ItemResult:
    """One event's outcome: recorded (or replayed), or refused with an error."""

    index: int
    key: str | None
    recorded: Recorded | None = None
    error: LoyaltyError | None = None


def derived_key(item: object) -> str:
    """The key of an event that brings none (history imports): a hash of its content,
    so that the same event imported twice is the same request."""
    canonical = msgspec.json.encode(item, order="sorted")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


class BatchService:
    def __init__(self, db: Database, events: EventService, *, chunk: int = CHUNK) -> None:
        self._db = db
        self._events = events
        self._chunk = chunk

    async def record_many(
        self, source: Principal, items: Sequence[object], *, derive_keys: bool = False
    ) -> list[ItemResult]:
        """Record each event, given as decoded JSON or as JSON bytes; with
        `derive_keys`, an event without an `idempotency_key` is keyed by its content
        (otherwise it is refused)."""
        if len(items) > MAX_EVENTS:
            raise InvalidInput.from_fields(
                [FieldError("events", "too_many", f"at most {MAX_EVENTS} events per batch")]
            )
        results: dict[int, ItemResult] = {}
        ready: list[tuple[int, Prepared]] = []
        for index, item in enumerate(items):
            try:
                key, event = _decode(item, derive_keys)
                ready.append((index, await self._events.prepare(key, event)))
            except LoyaltyError as error:
                results[index] = ItemResult(index, _key_of(item), error=error)
        lanes = 1 if self._db.is_sqlite else LANES
        by_lane: list[list[tuple[int, Prepared]]] = [[] for _ in range(lanes)]
        for index, prepared in ready:
            by_lane[zlib.crc32(prepared.event.member_id.encode()) % lanes].append((index, prepared))
        # A task group, not gather: should one lane fail, the others are cancelled (their
        # open chunk rolls back) rather than left committing behind an error response.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._record_lane(source, lane)) for lane in by_lane]
        for task in tasks:
            results.update((result.index, result) for result in task.result())
        return [results[index] for index in range(len(items))]

    async def _record_lane(
        self, source: Principal, lane: list[tuple[int, Prepared]]
    ) -> list[ItemResult]:
        done: list[ItemResult] = []
        for start in range(0, len(lane), self._chunk):
            done += await self._record_chunk(source, lane[start : start + self._chunk])
        return done

    async def _record_chunk(
        self, source: Principal, chunk: list[tuple[int, Prepared]]
    ) -> list[ItemResult]:
        savepoints, attempt = False, 1
        while True:
            try:
                return await self._try_chunk(source, chunk, savepoints)
            except _Refused:
                savepoints = True
            except DBAPIError as error:
                if attempt == ATTEMPTS or not is_transient(error):
                    raise
                attempt += 1

    async def _try_chunk(
        self, source: Principal, chunk: list[tuple[int, Prepared]], savepoints: bool
    ) -> list[ItemResult]:
        """Without `savepoints`, the first refused event rolls the chunk back (raising
        _Refused) to be run again with a savepoint per event: most chunks have no
        refusal and save two statements per event."""
        named = sorted({prepared.event.member_id for _, prepared in chunk})
        done: list[ItemResult] = []
        async with self._db.write() as conn:
            await book.lock_balances(
                conn, select(members.c.id).where(members.c.member_id.in_(named))
            )
            for index, prepared in chunk:
                try:
                    if savepoints:
                        async with conn.begin_nested():
                            recorded = await self._events.record_in(conn, source, prepared)
                    else:
                        recorded = await self._events.record_in(conn, source, prepared)
                    done.append(ItemResult(index, prepared.key, recorded=recorded))
                except LoyaltyError as error:
                    if not savepoints:
                        raise _Refused from error
                    done.append(ItemResult(index, prepared.key, error=error))
        return done


class _Refused(Exception):
    """An event was refused in a chunk run without savepoints."""


def _decode(item: object, derive_keys: bool) -> tuple[str, EventIn]:
    """The event and its key. Converted from JSON values as the single-event endpoint
    converts its body, so that both accept and fingerprint an event alike."""
    try:
        if isinstance(item, bytes):
            item = msgspec.json.decode(item)
        keyed = msgspec.convert(item, type=KeyedEventIn, strict=False)
    except msgspec.DecodeError as error:
        raise InvalidInput.from_fields([decoding_error(str(error))]) from None
    key = keyed.idempotency_key
    if key is None:
        if not derive_keys:
            raise InvalidInput.from_fields(
                [FieldError("idempotency_key", "required", "each event needs an idempotency_key")]
            )
        key = derived_key(item)
    return key, EventIn(**{name: getattr(keyed, name) for name in _EVENT_FIELDS})


def _key_of(item: object) -> str | None:
    """The key of an event that could not be read, if it names one, to report it by."""
    if isinstance(item, bytes):
        try:
            item = msgspec.json.decode(item)
        except msgspec.DecodeError:
            return None
    key = item.get("idempotency_key") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None
