"""The transparency report: for a period, findings by list and label, their reviews, the
retractions, and how long alerted content took to be removed, as the figures a hosting
service publishes (downloadable as JSON and CSV through the report's own methods).

What each figure counts is defined in `agent.model.transparency`. A period is half-open,
[since, until), in aware datetimes, and at most MAX_PERIOD_DAYS long (ten years and a bit:
long enough for any published report, short enough that a typo in a year is refused)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from agent.model.transparency import Period, TransparencyReport
from agent.services.errors import Invalid

if TYPE_CHECKING:
    from agent.store import Store

MAX_PERIOD_DAYS = 3660
# Longer than any ISO 8601 date or datetime: a bound that long is refused before parsing.
_MAX_BOUND_CHARS = 64


def _aware(at: datetime, field: str) -> None:
    """Invalid unless `at` has a zone and is a time UTC can spell (the store keeps UTC)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise Invalid(f"{field} must have a time zone (e.g. 2026-01-01T00:00:00Z)", field=field)
    try:
        at.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{field} is out of range", field=field) from None


def parse_bound(text: str, field: str) -> datetime:
    """One bound of a period from untrusted text: a date (`2026-01-01`, midnight UTC) or an
    ISO 8601 datetime with `Z` or an offset. A datetime without a zone is refused rather than
    guessed: a guess would move the period by hours."""
    raw = text.strip()
    if not raw or len(raw) > _MAX_BOUND_CHARS:
        raise Invalid(f"{field} must be a date (2026-01-01) or an ISO 8601 time with a zone", field=field)
    try:
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{field} must be a date (2026-01-01) or an ISO 8601 time with a zone", field=field) from None
    _aware(at, field)
    return at


class TransparencyService:
    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def period(since: str, until: str) -> Period:
        """The period [since, until) from untrusted text (see parse_bound), checked as `report` checks it."""
        period = Period(parse_bound(since, "since"), parse_bound(until, "until"))
        TransparencyService.check(period)
        return period

    @staticmethod
    def check(period: Period) -> None:
        """Invalid unless both bounds are aware, since < until and the period is at most MAX_PERIOD_DAYS."""
        _aware(period.since, "since")
        _aware(period.until, "until")
        if period.since >= period.until:
            raise Invalid("since must be before until (the period is [since, until))", field="until")
        if period.until - period.since > timedelta(days=MAX_PERIOD_DAYS):
            raise Invalid(f"the period must be at most {MAX_PERIOD_DAYS} days long", field="until")

    async def report(self, period: Period) -> TransparencyReport:
        """The report for `period` (Invalid when the period is reversed, empty or too long)."""
        self.check(period)
        return await self._store.reports.transparency(period)
