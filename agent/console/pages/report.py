"""The transparency report page: a period's figures from TransparencyService, and the same
report as CSV and JSON downloads.

The form speaks in whole UTC days with both ends included (a person asking for March types
2026-03-01 to 2026-03-31); the service's period is half-open, so the day after `until`
is where it stops. The figures and both downloads are the service's, unchanged."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from aiohttp import web

from agent.console.routing import READERS, Page, View
from agent.model.status import RetractionReason
from agent.model.time import utcnow
from agent.model.transparency import Period, TransparencyReport
from agent.services.errors import Invalid

DEFAULT_DAYS = 30
# Exactly what a date input sends: date.fromisoformat alone would also take 20260301 and
# week dates, spellings the page never offers and a reader of the URL would misread.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FIELD_NAMES = {"since": "From", "until": "To"}
REASONS = {
    RetractionReason.FALSE_POSITIVE: "False positive (a reviewer's verdict)",
    RetractionReason.ENTRY_DELETED: "List entry deleted upstream",
}


@dataclass(frozen=True, slots=True)
class Days:
    """A period as the form names it: UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def period(self) -> Period:
        start = datetime.combine(self.first, time(), tzinfo=UTC)
        return Period(start, datetime.combine(self.last, time(), tzinfo=UTC) + timedelta(days=1))

    @property
    def query(self) -> str:
        return urlencode({"since": self.first.isoformat(), "until": self.last.isoformat()})

    @property
    def filename(self) -> str:
        """The downloads' name (without its extension): the period's days, digits and dashes only."""
        return f"transparency-report-{self.first.isoformat()}-to-{self.last.isoformat()}"


def _day(text: str, name: str) -> date:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{_FIELD_NAMES[name]} must be a date such as 2026-03-01", field=name) from None


def days_of(view: View) -> Days:
    """The period the query names; a bound left out defaults to the last DEFAULT_DAYS days
    up to today (UTC). Invalid, naming the field, for a bad date or order."""
    since, until = view.query("since", max_len=32), view.query("until", max_len=32)
    last = _day(until, "until") if until else utcnow().date()
    first = _day(since, "since") if since else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise Invalid("From must be on or before To", field="until")
    if last == date.max:  # the day after it, where the period ends, has no datetime
        raise Invalid("To is out of range", field="until")
    return Days(first, last)


async def _report(view: View) -> tuple[Days, TransparencyReport]:
    days = days_of(view)
    return days, await view.context.services.transparency.report(days.period)


def _render(
    view: View,
    since: str,
    until: str,
    *,
    report: TransparencyReport | None = None,
    days: Days | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    rows = report.retractions if report else ()
    retractions = [(REASONS.get(row.reason, row.reason.value), row.count) for row in rows]
    values = {
        "since": since,
        "until": until,
        "default_days": DEFAULT_DAYS,
        "errors": errors or {},
        "report": report,
        "days": days,
        "retractions": retractions,
    }
    return view.render("report.html", values, status=status)


def _refused(view: View, exc: Invalid) -> web.Response:
    """The form again with what was typed and the message by its field (422)."""
    field = exc.field if exc.field in _FIELD_NAMES else "until"
    typed = {name: view.request.query.get(name, "")[:32] for name in _FIELD_NAMES}
    return _render(view, typed["since"], typed["until"], errors={field: exc.message}, status=422)


async def report_page(view: View) -> web.StreamResponse:
    try:
        days, report = await _report(view)
    except Invalid as exc:
        return _refused(view, exc)
    return _render(view, days.first.isoformat(), days.last.isoformat(), report=report, days=days)


def _attachment(days: Days, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{days.filename}.{extension}"'}


async def report_csv(view: View) -> web.StreamResponse:
    try:
        days, report = await _report(view)
    except Invalid as exc:
        return _refused(view, exc)
    text = report.to_csv()
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=_attachment(days, "csv"))


async def report_json(view: View) -> web.StreamResponse:
    try:
        days, report = await _report(view)
    except Invalid as exc:
        return _refused(view, exc)
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False)
    return web.Response(text=text, content_type="application/json", charset="utf-8", headers=_attachment(days, "json"))


PAGES = [
    Page("GET", "/report", report_page, READERS),
    Page("GET", "/report.csv", report_csv, READERS),
    Page("GET", "/report.json", report_json, READERS),
]
