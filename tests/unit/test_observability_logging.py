"""Every log line goes out through one renderer: structlog's own and the standard
library's (APScheduler, aiohttp, asyncio, the webhook worker, Python warnings)."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest
import structlog

from agent.observability import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_stdlib_records_and_warnings_are_json_lines_with_their_traceback_inside(stream: io.StringIO) -> None:
    configure_logging("info", stream=stream, json=True)
    configure_logging("info", stream=stream, json=True)  # configured twice: still one handler, one line each
    structlog.get_logger("agent.daemon").info("agent.started", token="s3cret")
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("agent.alerts.delivery").exception("delivery %s: recording the attempt failed", 7)
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %r was missed", "lists")
    logging.getLogger("apscheduler.scheduler").info("Added job 'lists'")  # routine chatter: only at debug
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning, stacklevel=1)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"].splitlines()[0], e.get("logger")) for e in lines] == [
        ("agent.started", None),
        ("delivery 7: recording the attempt failed", "agent.alerts.delivery"),
        ("Run time of job 'lists' was missed", "apscheduler.scheduler"),
        (lines[3]["event"].splitlines()[0], "py.warnings"),
    ]
    assert lines[0]["token"] == "[redacted]"
    assert "ValueError: bad" in lines[1]["exception"] and lines[1]["level"] == "error"
    assert "careful" in lines[3]["event"]


def test_database_drivers_never_log_statement_parameters_even_at_debug(stream: io.StringIO) -> None:
    """SQL parameters hold token hashes and webhook secrets: the drivers' DEBUG and INFO lines
    (SQLAlchemy's statements) are dropped under --log-level debug, while the agent's own debug
    lines still appear."""
    configure_logging("debug", stream=stream, json=True)
    logging.getLogger("aiosqlite").debug("executing %s with %r", "SELECT ...", ("dwa_hash",))
    logging.getLogger("sqlalchemy.engine.Engine").debug("[parameters] %r", ("whsec_secret",))
    logging.getLogger("sqlalchemy.engine.Engine").info("[generated] %r", ("dwa_info",))
    structlog.get_logger("agent.daemon").debug("agent.debug_line")
    text = stream.getvalue()
    assert "dwa_hash" not in text and "whsec_secret" not in text and "dwa_info" not in text
    assert "agent.debug_line" in text
