"""Logging (structlog) and metrics (Prometheus) set up once per process."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry
from structlog.typing import Processor

# Keys whose values must never reach a log line, whatever the caller passes.
_SECRET_KEYS = frozenset({"secret", "token", "authorization", "password", "api_key"})

# Libraries that log every routine step at INFO (APScheduler: each job run);
# their warnings and errors still come through, their chatter only at debug.
_CHATTY = ("apscheduler", "aiohttp", "asyncio")
# Database drivers log every statement with its parameters at DEBUG: those parameters hold API
# token hashes and webhook secrets, so these loggers stay at WARNING or above whatever the log level
# (SQLAlchemy's INFO lines are its statements and their parameters).
_SECRET_BEARING = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool")


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


class _AgentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler every log line goes through; marked so that a second
    configure_logging (tests, embedded use) replaces it instead of doubling lines."""


def configure_logging(level: str = "info", stream: TextIO | None = None, json: bool | None = None) -> None:
    """JSON lines when the stream is not a terminal, human console output otherwise.

    The standard library's logging (APScheduler, aiohttp, asyncio, the webhook
    delivery worker, Python warnings) goes through the same renderer as
    structlog's own lines, so a log reader never meets a plain-text line or a
    bare traceback. Logs go to stderr so that stdout stays free for reports
    (`--format json`)."""
    out = stream if stream is not None else sys.stderr
    as_json = (not out.isatty()) if json is None else json
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _AgentHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Records from the standard library: their logger's name says who wrote them.
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.PositionalArgumentsFormatter(),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _AgentHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
    for name in _SECRET_BEARING:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # Off, then on: captureWarnings(True) does nothing while it thinks it is on, even after
    # someone restored warnings.showwarning (warnings.catch_warnings does), so a second
    # configuration would leave warnings unrouted.
    logging.captureWarnings(False)
    logging.captureWarnings(True)


def new_registry() -> CollectorRegistry:
    """A registry per agent instance, so tests and embedded agents never share counters."""
    return CollectorRegistry(auto_describe=True)
