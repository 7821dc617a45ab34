"""Typed settings read from LOYALTY_* environment variables and validated at start."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "LOYALTY_"
# Variables for the test suite and benchmarks, not for the engine.
_TOOLING_PREFIXES = ("LOYALTY_TEST_", "LOYALTY_BENCH_", "LOYALTY_REQUIRE_")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./loyalty.db"

# Users paste URLs from other tools; the driver part is ours to choose.
_DRIVER_ALIASES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_SUPPORTED_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")


class SettingsError(ValueError):
    """A setting is missing, misspelt or has a bad value; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    database_url: str = DEFAULT_DATABASE_URL
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    # Revoking a key takes effect on other processes within this many seconds;
    # the cache keeps a database round trip off every authenticated request.
    auth_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    # How soon a worker notices a programme version published through another worker.
    program_refresh_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    # An event for a member_id the engine does not know: refuse it (404), or enrol the
    # member on the spot (tills that sign members up at the first purchase).
    unknown_member: Literal["reject", "enrol"] = "reject"
    # Region for phone numbers typed without a country code (e.g. "CN"); none means
    # numbers must be given in international form (+86...).
    default_phone_region: str | None = None

    def __post_init__(self) -> None:
        normalise_database_url(self.database_url)

    @property
    def database(self) -> URL:
        return normalise_database_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        known = {f"{ENV_PREFIX}{name.upper()}": name for name in cls.__struct_fields__}
        values: dict[str, str] = {}
        for key, value in env.items():
            if not key.startswith(ENV_PREFIX) or key.startswith(_TOOLING_PREFIXES):
                continue
            if key in known:
                values[known[key]] = value
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
            if close:
                raise SettingsError(f"{key}: unknown setting (did you mean {close[0]}?)")
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Settings:
        try:
            return msgspec.convert(dict(values), cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_describe(exc)) from exc
        except SettingsError:
            raise


def normalise_database_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise SettingsError(f"LOYALTY_DATABASE_URL: not a database URL: {raw!r}") from exc
    url = url.set(drivername=_DRIVER_ALIASES.get(url.drivername, url.drivername))
    if url.drivername not in _SUPPORTED_DRIVERS:
        raise SettingsError(
            f"LOYALTY_DATABASE_URL: unsupported driver {url.drivername!r} "
            f"(use one of: {', '.join(_SUPPORTED_DRIVERS)})"
        )
    return url


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says "... - at `$.port`"; name the environment variable instead.
    message = str(exc)
    if " - at `$." in message:
        text, _, path = message.rpartition(" - at `$.")
        return f"{ENV_PREFIX}{path.rstrip('`').upper()}: {text}"
    return message
