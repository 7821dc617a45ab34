"""History backfills from a JSON Lines file: resumable, and never counting an event twice.

Every line is an event as posted to /v1/events, with an optional `idempotency_key`
(a line without one is keyed by a hash of its content). Lines go through the batch
service a batch at a time. After each batch the byte offset reached and the running
counts are saved beside the file (FILE.import-state.json, replaced atomically), and
refused lines are appended to FILE.import-errors.jsonl with their line number and
problem. An interrupted import resumes from the last saved offset: the batch that was
in flight is sent again, and those of its events that had been recorded come back as
replays, so nothing is counted twice. Imports share one idempotency scope of their
own (source 0, never an API key's id), so importing the same line again, from any file,
is a replay.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import msgspec
import structlog

from loyalty.auth.keys import Principal, Role
from loyalty.errors import InvalidInput, LoyaltyError
from loyalty.ledger.batch import MAX_EVENTS, BatchService

log = structlog.get_logger("loyalty.import")
IMPORT_SOURCE = Principal(key_id=0, name="import", role=Role.ADMIN)
DEFAULT_BATCH = 500


class ImportState(msgspec.Struct, kw_only=True):
    """How far an import got: the byte offset and line reached, and what happened to
    the lines before it."""

    offset: int = 0
    line: int = 0
    recorded: int = 0
    replayed: int = 0
    failed: int = 0


class _Refusal(msgspec.Struct, omit_defaults=True):
    line: int
    idempotency_key: str | None
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None


def state_path(path: Path) -> Path:
    return path.with_name(path.name + ".import-state.json")


def errors_path(path: Path) -> Path:
    return path.with_name(path.name + ".import-errors.jsonl")


async def import_file(
    batches: BatchService,
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportState:
    """Import `path` from where the last run stopped (from the start with `restart`);
    `progress` is told how many bytes each batch consumed."""
    run_id, started = uuid.uuid4().hex, time.perf_counter()
    batch_size = max(1, min(batch_size, MAX_EVENTS))
    saved = state_path(path)
    if restart:
        saved.unlink(missing_ok=True)
        errors_path(path).unlink(missing_ok=True)
    state = _saved_state(saved) or ImportState()
    if progress is not None:
        progress(state.offset)
    with path.open("rb") as source, errors_path(path).open("ab") as refusals:
        source.seek(state.offset)
        while True:
            numbers, lines, size, reached = _read_batch(source, state.line, batch_size)
            if size == 0:
                log.info(
                    "import",
                    run_id=run_id,
                    file=path.name,
                    lines=state.line,
                    recorded=state.recorded,
                    replayed=state.replayed,
                    refused=state.failed,
                    seconds=round(time.perf_counter() - started, 2),
                )
                return state
            results = await batches.record_many(IMPORT_SOURCE, lines, derive_keys=True)
            for number, result in zip(numbers, results, strict=True):
                if result.recorded is None:
                    state.failed += 1
                    refusals.write(_refusal(number, result.key, result.error) + b"\n")
                elif result.recorded.replay:
                    state.replayed += 1
                else:
                    state.recorded += 1
            refusals.flush()
            state.offset, state.line = state.offset + size, reached
            _save(saved, state)
            if progress is not None:
                progress(size)


def _read_batch(
    source: BinaryIO, line: int, batch_size: int
) -> tuple[list[int], list[bytes], int, int]:
    """Up to `batch_size` non-blank lines after line number `line`: their numbers and
    bytes, the bytes consumed and the line number reached (blank lines included)."""
    numbers: list[int] = []
    lines: list[bytes] = []
    size = 0
    while len(lines) < batch_size:
        text = source.readline()
        if not text:
            break
        size += len(text)
        line += 1
        if text.strip():
            numbers.append(line)
            lines.append(text)
    return numbers, lines, size, line


def _refusal(line: int, key: str | None, error: LoyaltyError | None) -> bytes:
    assert error is not None
    fields = [msgspec.structs.asdict(field) for field in error.errors] or None
    return msgspec.json.encode(_Refusal(line, key, error.code, error.detail, fields))


def _saved_state(path: Path) -> ImportState | None:
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=ImportState)
    except msgspec.DecodeError as error:
        raise InvalidInput(
            "import_state_unreadable",
            f"{path.name} is not an import state ({error}); start again with --restart",
        ) from None


def _save(path: Path, state: ImportState) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(msgspec.json.encode(state))
    os.replace(partial, path)
