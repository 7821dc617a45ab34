"""structlog configuration: JSON lines in production, readable console on a terminal.

The server's own stdlib loggers (uvicorn) go through the same renderer, so a
production log is one JSON object per line whoever wrote it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import msgspec
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# repr() keeps a log line alive when a value has no JSON form (an exception, a UUID).
_ENCODER = msgspec.json.Encoder(enc_hook=repr)


def _encode_json(event: Any, **_: Any) -> str:
    return _ENCODER.encode(event).decode()


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    # Logs go to stderr: stdout carries command output (an API key, a report).
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        # Plain tracebacks: the default rich ones print each frame's locals, which
        # hold API keys and personal data.
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if use_console
        else structlog.processors.JSONRenderer(serializer=_encode_json)
    )
    tail: list[structlog.types.Processor] = (
        [] if use_console else [structlog.processors.format_exc_info]
    )
    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Our request line replaces the access log; alembic narrates every connection.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(_LEVELS[level], logging.WARNING))
