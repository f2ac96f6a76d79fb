"""The console's scans: a form that queues a scan (the API's rules: agent.services.scan_jobs
checks the target and every URL), the recent scans, one scan's live progress, its report as
a table and its JSON, and cancelling it.

The report is the JSON of `dweb-agent scan --format json` as the runner stored it; it is read
here into small view objects field by field, tolerating what is missing, since a stored report
outlives the code that wrote it. Everything in it (paths, gateway errors, labels) is text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web

from agent.console.routing import READERS, WRITERS, Page, Refused, View
from agent.model.jobs import JobStatus, ScanJobRow
from agent.services import Invalid, ScanJobRequest
from agent.services.scan_jobs import MAX_GATEWAYS, MAX_LISTS

SCANS_PER_PAGE: Final = 50
# A report's item table is paged: a DAG of a hundred thousand files is one JSON download,
# not one HTML page.
ITEMS_PER_PAGE: Final = 500
# As the API's body: a target or one URL is at most this long.
URL_CHARS: Final = 4096
_LINES_CHARS: Final = 32 * 1024
# "gateways[1]: ..." -> field gateways, the second URL given (the service's refusals name their field).
_REFUSAL: Final = re.compile(r"^(target|gateways|lists|mode)(?:\[(\d+)\])?: ")
_SUMMARY_ORDER: Final = ("items", "verified", "incomplete", "blocked", "error", "skipped", "findings", "bytes")


@dataclass(frozen=True, slots=True)
class ScanForm:
    """What the form held, as typed (kept when it is refused)."""

    target: str = ""
    gateways: str = ""
    lists: str = ""
    mode: str = "car"


@dataclass(frozen=True, slots=True)
class FormError:
    field: str  # target, gateways, lists or mode: the control the message is shown beside
    message: str


@dataclass(frozen=True, slots=True)
class FindingCell:
    list_name: str
    signal_type: str
    distance: int | float | None
    entry: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemRow:
    path: str
    cid: str | None
    status: str
    media_type: str | None
    size: int | None
    error: str | None
    findings: tuple[FindingCell, ...]
    gateway: str | None  # the one that served its verified bytes
    lied: tuple[str, ...]
    blocked_at: tuple[str, ...]
    duplicate_of: str | None
    seen_before: bool


@dataclass(frozen=True, slots=True)
class GatewayRow:
    url: str
    served: int | None
    failures: int | None
    lied: int | None
    blocked: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ReportTable:
    """A stored report as the page shows it (one page of its items)."""

    root: str | None
    resolved: str | None
    started_at: str | None
    finished_at: str | None
    totals: tuple[tuple[str, int], ...]
    errors: tuple[str, ...]
    root_findings: tuple[FindingCell, ...]
    gateways: tuple[GatewayRow, ...]
    lists: tuple[str, ...]
    items: tuple[ItemRow, ...]
    item_count: int
    start: int  # the index of the first item shown
    next_start: int | None
    prev_start: int | None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> int | float | None:
    """A distance as the report holds it: 12 stays 12, a vPDQ share 87.5 stays 87.5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _finding(data: dict[str, Any]) -> FindingCell:
    return FindingCell(
        list_name=_text(data.get("list")) or "?",
        signal_type=_text(data.get("signal_type")) or "?",
        distance=_number(data.get("distance")),
        entry=_text(data.get("entry")) or "",
        labels=_strings(data.get("labels")),
    )


def _item(data: dict[str, Any]) -> ItemRow:
    source = data.get("source")
    source = source if isinstance(source, dict) else {}
    blocked = source.get("blocked_at")
    blocked_at = (
        tuple(f"{gateway} ({status})" for gateway, status in blocked.items() if isinstance(gateway, str))
        if isinstance(blocked, dict)
        else ()
    )
    return ItemRow(
        path=_text(data.get("path")) or "",
        cid=_text(data.get("cid")),
        status=_text(data.get("status")) or "?",
        media_type=_text(data.get("media_type")),
        size=_int(data.get("size")),
        error=_text(data.get("error")),
        findings=tuple(_finding(f) for f in _objects(data.get("findings"))),
        gateway=_text(source.get("gateway")),
        lied=_strings(source.get("lied")),
        blocked_at=blocked_at,
        duplicate_of=_text(data.get("duplicate_of")),
        seen_before=data.get("seen_before") is True,
    )


def report_table(report: dict[str, Any], start: int = 0) -> ReportTable:
    """The report's facts, and its items from `start` (one page of them)."""
    items = _objects(report.get("items"))
    start = min(max(start, 0), max(len(items) - 1, 0))
    shown = items[start : start + ITEMS_PER_PAGE]
    summary = report.get("summary")
    summary = summary if isinstance(summary, dict) else {}
    totals = tuple((k, v) for k in _SUMMARY_ORDER if (v := _int(summary.get(k))) is not None)
    gateways = tuple(
        GatewayRow(
            url=_text(g.get("url")) or "?",
            served=_int(g.get("served")),
            failures=_int(g.get("failures")),
            lied=_int(g.get("lied")),
            blocked=_int(g.get("blocked")),
            last_error=_text(g.get("last_error")),
        )
        for g in _objects(report.get("gateways"))
    )
    lists = tuple(name for entry in _objects(report.get("lists")) if (name := _text(entry.get("name"))))
    end = start + len(shown)
    return ReportTable(
        root=_text(report.get("root")),
        resolved=_text(report.get("resolved")),
        started_at=_text(report.get("started_at")),
        finished_at=_text(report.get("finished_at")),
        totals=totals,
        errors=_strings(report.get("errors")),
        root_findings=tuple(_finding(f) for f in _objects(report.get("findings"))),
        gateways=gateways,
        lists=lists,
        items=tuple(_item(i) for i in shown),
        item_count=len(items),
        start=start,
        next_start=end if end < len(items) else None,
        prev_start=max(start - ITEMS_PER_PAGE, 0) if start > 0 else None,
    )


def _lines(view: View, name: str, most: int) -> list[str]:
    """A textarea's non-empty lines, each stripped (at most `most` of them, each a URL's length)."""
    text = view.field(name, required=False, max_len=_LINES_CHARS)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > most:
        raise Invalid(f"{name}: at most {most} URLs, one per line (there are {len(lines)})", field=name)
    for i, line in enumerate(lines):
        if len(line) > URL_CHARS:
            raise Invalid(f"{name}[{i}]: longer than {URL_CHARS} characters", field=name)
    return lines


def form_error(exc: Invalid, form: ScanForm) -> FormError:
    """The service's refusal beside the control it is about; "gateways[1]" is said as the line it is on."""
    found = _REFUSAL.match(exc.message)
    if found is None:
        return FormError(exc.field if exc.field in ("target", "gateways", "lists", "mode") else "target", exc.message)
    name, index, rest = found.group(1), found.group(2), exc.message[found.end() :]
    if index is None:
        return FormError(name, rest)
    given = [n for n, line in enumerate(getattr(form, name).splitlines(), 1) if line.strip()]
    position = int(index)
    where = f"line {given[position]}" if position < len(given) else f"URL {position + 1}"
    return FormError(name, f"{where}: {rest}")


async def _scans_page(view: View, form: ScanForm, error: FormError | None, status: int = 200) -> web.Response:
    before = view.query("before", max_len=20)
    if before is not None and not before.isdigit():
        raise Invalid("before: a scan id (digits)", field="before")
    before_id = int(before) if before is not None else None
    rows = await view.context.services.jobs.page(SCANS_PER_PAGE + 1, before_id=before_id)
    page, more = rows[:SCANS_PER_PAGE], len(rows) > SCANS_PER_PAGE
    values = {
        "scans": page,
        "older": page[-1].id if more and page else None,
        "paged": before_id is not None,
        "form": form,
        "error": error,
        "known_lists": await view.context.services.lists.known_names() if view.can(WRITERS) else [],
        "configured_gateways": view.context.settings.gateways.urls,
        "max_gateways": MAX_GATEWAYS,
        "max_lists": MAX_LISTS,
        "url_chars": URL_CHARS,
    }
    return view.render("scans.html", values, status=status)


async def scans_page(view: View) -> web.StreamResponse:
    return await _scans_page(view, ScanForm(), None)


async def submit_scan(view: View) -> web.StreamResponse:
    form = ScanForm(
        target=view.form.get("target", "")[:URL_CHARS],
        gateways=view.form.get("gateways", "")[:_LINES_CHARS],
        lists=view.form.get("lists", "")[:_LINES_CHARS],
        mode=view.form.get("mode", "car")[:8],
    )
    try:
        target = view.field("target", max_len=URL_CHARS)
        gateways = _lines(view, "gateways", MAX_GATEWAYS)
        lists = _lines(view, "lists", MAX_LISTS)
        if form.mode not in ("car", "raw"):
            raise Invalid("mode: choose car or raw", field="mode")
        mode: Literal["car", "raw"] = "raw" if form.mode == "raw" else "car"
        row = await view.context.services.jobs.submit(
            ScanJobRequest(target, tuple(gateways), tuple(lists), mode), view.principal.name
        )
    except Invalid as exc:
        return await _scans_page(view, form, form_error(exc, form), status=422)
    if view.context.wake_scans is not None:
        view.context.wake_scans()
    raise view.redirect(f"/scans/{row.id}")


def _progress(row: ScanJobRow) -> dict[str, Any]:
    return {"status": row.status.value, "finished": row.status.finished, **row.progress.to_json()}


async def scan_page(view: View) -> web.StreamResponse:
    row = await view.context.services.jobs.get(view.id())
    start = view.query("start", max_len=12)
    table = None
    if row.report is not None:
        table = report_table(row.report, int(start) if start is not None and start.isdigit() else 0)
    values = {
        "scan": row,
        "finished": row.status.finished,
        "failed": row.status is JobStatus.FAILED,
        "table": table,
        "cancelled_now": view.query("cancelled") == "1",
        "configured_gateways": view.context.settings.gateways.urls,
    }
    return view.render("scan.html", values)


async def scan_progress(view: View) -> web.StreamResponse:
    row = await view.context.services.jobs.get(view.id())
    return web.json_response(_progress(row), headers={"Cache-Control": "no-store"})


async def scan_report(view: View) -> web.StreamResponse:
    row = await view.context.services.jobs.get(view.id())
    if row.report is None:
        raise Refused(404, f"scan {row.id} has no report ({row.status.value})")
    return web.Response(
        text=json.dumps(row.report, indent=2),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="scan-{row.id}.json"'},
    )


async def cancel_scan(view: View) -> web.StreamResponse:
    jobs = view.context.services.jobs
    before = await jobs.get(view.id())
    if not before.status.finished:
        # A queued scan is cancelled now; a running one when its runner next renews its lease.
        await jobs.cancel(before.id)
    raise view.redirect(f"/scans/{before.id}?cancelled=1")


PAGES = [
    Page("GET", "/scans", scans_page, READERS),
    Page("POST", "/scans", submit_scan, WRITERS, resource="scan"),
    Page("GET", "/scans/{id}", scan_page, READERS),
    Page("GET", "/scans/{id}/progress", scan_progress, READERS),
    Page("GET", "/scans/{id}/report.json", scan_report, READERS),
    Page("POST", "/scans/{id}/cancel", cancel_scan, WRITERS, resource="scan:{id}"),
]
