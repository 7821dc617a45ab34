from __future__ import annotations

import pytest

from loyalty.settings import DEFAULT_DATABASE_URL, Settings, SettingsError


def test_defaults_run_on_embedded_sqlite() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database.drivername == "sqlite+aiosqlite"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {"LOYALTY_PORT": "9000", "LOYALTY_WORKERS": "4", "LOYALTY_LOG_FORMAT": "json", "HOME": "/x"}
    )
    assert (settings.port, settings.workers, settings.log_format) == (9000, 4, "json")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@db/loyalty", "postgresql+asyncpg"),
        ("postgres://u@db/loyalty", "postgresql+asyncpg"),
        ("sqlite:///./x.db", "sqlite+aiosqlite"),
    ],
)
def test_plain_database_urls_get_our_async_driver(given: str, driver: str) -> None:
    assert Settings.from_env({"LOYALTY_DATABASE_URL": given}).database.drivername == driver


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOYALTY_PORT": "eighty"}, "LOYALTY_PORT: Expected `int`"),
        ({"LOYALTY_PORT": "70000"}, "LOYALTY_PORT: Expected `int` <= 65535"),
        ({"LOYALTY_LOG_LEVEL": "loud"}, "LOYALTY_LOG_LEVEL: Invalid enum value 'loud'"),
        ({"LOYALTY_DATABASE_URL": "mysql://x/y"}, "unsupported driver 'mysql'"),
        ({"LOYALTY_DATABASE_URL": "::::"}, "not a database URL"),
        ({"LOYALTY_DATABSE_URL": "x"}, "did you mean LOYALTY_DATABASE_URL?"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("?", r"\?").replace("(", r"\(")):
        Settings.from_env(env)


def test_unrelated_loyalty_variables_are_ignored() -> None:
    assert Settings.from_env({"LOYALTY_TEST_DATABASE_URL": "postgresql://x/y"}).port == 8000
