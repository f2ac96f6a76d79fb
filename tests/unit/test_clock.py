"""The one UTC clock and the report's time spelling (a public format: other tools parse it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent.model.report import ScanReport
from agent.model.time import iso_utc, utcnow

REPORT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_iso_utc_spells_milliseconds_and_z() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert iso_utc(at) == "2026-01-02T03:04:05.678Z"
    assert iso_utc(at.replace(microsecond=0)) == "2026-01-02T03:04:05.000Z"


def test_iso_utc_converts_other_offsets_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2026, 1, 2, 4, 4, 5, tzinfo=paris)) == "2026-01-02T03:04:05.000Z"


def test_iso_utc_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_utc(datetime(2026, 1, 2, 3, 4, 5))  # noqa: DTZ001  (the naive time under test)


def test_the_report_writes_times_in_that_spelling() -> None:
    report = ScanReport.failed("nothing://", "no such target", utcnow())
    assert REPORT_TIME.fullmatch(report.started_at)
    assert report.finished_at == report.started_at
