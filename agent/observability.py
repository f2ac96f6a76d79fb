"""Logging (structlog) and metrics (Prometheus) set up once per process."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from prometheus_client import CollectorRegistry

# Keys whose values must never reach a log line, whatever the caller passes.
_SECRET_KEYS = frozenset({"secret", "token", "authorization", "password", "api_key"})


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "info", stream: TextIO | None = None, json: bool | None = None) -> None:
    """JSON lines when the stream is not a terminal, human console output otherwise.

    Logs go to stderr so that stdout stays free for reports (`--format json`)."""
    out = stream if stream is not None else sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def new_registry() -> CollectorRegistry:
    """A registry per agent instance, so tests and embedded agents never share counters."""
    return CollectorRegistry(auto_describe=True)
