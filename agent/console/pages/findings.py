"""The findings pages: the review queue (priority or newest first, filtered, counted, paged),
one finding in full (why it matched, where it is, its content state, its reviews and its
deliveries) with a preview fetched on demand, the review form, and the preview's bytes.

The queue pages by offset in both orders, unlike the API's newest-first cursor: a reviewer
reads "51-100 of 230" and steps back a page, which a cursor cannot say; a finding recorded
meanwhile may shift a page by one, which the priority order (offset-paged by the service
too) accepts anyway.

Stored JSON (a content probe's per-gateway answers, an event's payload) is read field by
field into small view objects, tolerating what is missing: it outlives the code that wrote
it, and every string in it is shown as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from agent.console.routing import ADMIN, READERS, WRITERS, Page, View
from agent.model.finding import DenyBasis, MatchedOn
from agent.model.records import (
    ContentStatusRow,
    EventRow,
    FindingDetail,
    FindingFilter,
    FindingOrder,
    FindingView,
    ListVersionRow,
)
from agent.model.signals import EXACT_TYPES, SignalType
from agent.model.status import ContentState, ReviewState, Verdict
from agent.services.errors import Invalid
from agent.services.findings import MAX_PAGE, ReviewRequest, finding_links
from agent.services.lists import MatchThresholds
from agent.services.preview import PreviewUnavailable

_E = TypeVar("_E", bound=StrEnum)

PAGE_SIZE: Final = 50
# Past this a page is too long to review; the service itself allows MAX_PAGE.
MAX_PAGE_SIZE: Final = min(200, MAX_PAGE)
MAX_OFFSET: Final = 10**9
_MAX_ID: Final = 2**53
# As the API's review body (agent.api.routes.findings.ReviewIn).
MAX_NOTE: Final = 4000
# As the API's findings query: a list name or a label is at most this long.
MAX_NAME: Final = 200
# Takedown tracking records only these (an "unknown" probe is no change of state).
CONTENT_CHOICES: Final = (ContentState.AVAILABLE, ContentState.UNAVAILABLE)
_CONTENT_EVENTS: Final = {"content.available": True, "content.unavailable": False}
_REVIEWED: Final = {
    Verdict.CONFIRMED.value: "Recorded: the finding is confirmed.",
    Verdict.FALSE_POSITIVE.value: "Recorded as a false positive: the alert is retracted for its subscribers.",
}


# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """What the queue shows: its order, its filter and where the page starts."""

    order: FindingOrder
    flt: FindingFilter
    offset: int
    limit: int

    @property
    def filtered(self) -> bool:
        f = self.flt
        return any(v is not None for v in (f.list_name, f.label, f.target_id, f.review, f.content))

    def link(self, offset: int) -> str:
        """The queue's URL at `offset`, with this order and these filters (defaults left out)."""
        f = self.flt
        params: list[tuple[str, str]] = []
        if self.order is not FindingOrder.PRIORITY:
            params.append(("order", self.order.value))
        for name, value in (
            ("list", f.list_name),
            ("label", f.label),
            ("target", str(f.target_id) if f.target_id is not None else None),
            ("review", f.review.value if f.review is not None else None),
            ("content", f.content.value if f.content is not None else None),
        ):
            if value is not None:
                params.append((name, value))
        if self.limit != PAGE_SIZE:
            params.append(("limit", str(self.limit)))
        if offset:
            params.append(("offset", str(offset)))
        return "/ui/findings" + ("?" + urlencode(params) if params else "")


def _number(view: View, name: str, *, default: int | None, low: int, high: int) -> int | None:
    raw = view.query(name, max_len=20)
    if raw is None:
        return default
    # isascii: str.isdigit() also admits digits int() refuses ("²").
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}", field=name)
    return int(raw)


def _choice(view: View, name: str, allowed: Sequence[_E]) -> _E | None:
    raw = view.query(name, max_len=40)
    if raw is None:
        return None
    for member in allowed:
        if member.value == raw:
            return member
    raise Invalid(f"{name} must be one of: {', '.join(m.value for m in allowed)}", field=name)


def queue_query(view: View) -> QueueQuery:
    """The queue's GET parameters, or Invalid naming the one at fault."""
    order = _choice(view, "order", tuple(FindingOrder)) or FindingOrder.PRIORITY
    flt = FindingFilter(
        list_name=view.query("list", max_len=MAX_NAME),
        label=view.query("label", max_len=MAX_NAME),
        target_id=_number(view, "target", default=None, low=0, high=_MAX_ID),
        review=_choice(view, "review", tuple(ReviewState)),
        content=_choice(view, "content", CONTENT_CHOICES),
    )
    offset = _number(view, "offset", default=0, low=0, high=MAX_OFFSET) or 0
    limit = _number(view, "limit", default=PAGE_SIZE, low=1, high=MAX_PAGE_SIZE) or PAGE_SIZE
    return QueueQuery(order, flt, offset, limit)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A list's threshold for one signal type, as a sentence; `known` False: this agent
    cannot say (it has not loaded the list, and the configuration sets nothing for it)."""

    text: str
    known: bool = True


class Thresholds:
    """Where a finding's threshold comes from: the catalog the agent matches with now (a
    list's own thresholds with the configured overrides applied), or, for a list this agent
    has not loaded, the configured override alone ([lists.thresholds.<name>])."""

    def __init__(self, view: View) -> None:
        catalog = view.context.matcher.catalog()
        loaded = {s.name for s in catalog.summaries}
        self._loaded = {h.name: MatchThresholds.of(h) for h in catalog.index.lists if h.name in loaded}
        self._configured = view.context.settings.lists.thresholds

    def of(self, list_name: str, signal: MatchedOn) -> Threshold:
        if isinstance(signal, DenyBasis):
            return Threshold(f"the denylisted {signal.value} itself (no distance)")
        if signal in EXACT_TYPES:
            return Threshold("exact: the same bytes' hash (no distance)")
        limits = self._loaded.get(list_name)
        configured = self._configured.get(list_name)
        value: float | None
        if signal is SignalType.VPDQ:
            value = limits.vpdq_match_percent if limits else configured.vpdq_match_percent if configured else None
            text = f"at least {value:g}% of the video's frames" if value is not None else ""
        else:
            if limits is not None:
                value = limits.pdq_distance if signal is SignalType.PDQ else dict(limits.imagehash_distance).get(signal)
                if value is None:
                    return Threshold(f"none: list {list_name} no longer matches {signal.value}")
            else:
                value = getattr(configured, f"{signal.value}_distance", None) if configured else None
            text = f"at most {value:g} bits" if value is not None else ""
        if value is None:
            return Threshold(f"unknown: this agent has not loaded list {list_name}", known=False)
        if limits is None:
            text += " (as configured; this agent has not loaded the list)"
        return Threshold(text)

    def compared(self, list_name: str) -> Threshold:
        """vPDQ's second threshold: the share of the list video's frames that must match."""
        limits = self._loaded.get(list_name)
        configured = self._configured.get(list_name)
        value = limits.vpdq_compared_percent if limits else configured.vpdq_compared_percent if configured else None
        if value is None:
            return Threshold(f"unknown: this agent has not loaded list {list_name}", known=False)
        return Threshold(f"at least {value:g}% of the list video's frames" if value else "none required")


def distance_text(view: FindingView) -> str:
    f = view.finding
    if f.signal_type is SignalType.VPDQ:
        return f"{f.distance:g}% of the frames matched"
    if isinstance(f.signal_type, DenyBasis) or f.signal_type in EXACT_TYPES:
        return "exact"
    return f"{f.distance:g} bits"


def review_state(view: FindingView) -> ReviewState:
    return ReviewState(view.review.verdict.value) if view.review is not None else ReviewState.UNREVIEWED


@dataclass(frozen=True, slots=True)
class QueueRow:
    view: FindingView
    state: ReviewState
    distance: str
    threshold: Threshold
    # None: takedown tracking has not checked the item yet.
    content: ContentState | None


async def _content_states(view: View, views: Sequence[FindingView]) -> dict[str, ContentState | None]:
    """Each page item's content state (None: takedown tracking has not checked it yet)."""
    keys = [v.finding.item_key for v in views]
    known = await view.context.services.findings.content_states(keys)
    return {key: known.get(key) for key in keys}


async def queue_page(view: View) -> web.StreamResponse:
    q = queue_query(view)
    findings = view.context.services.findings
    page = await findings.page(q.flt, limit=q.limit, order=q.order, offset=q.offset)
    total = await findings.count(q.flt)
    facets = await findings.facets()
    targets = await view.context.services.targets.all()
    thresholds = Thresholds(view)
    states = await _content_states(view, page.findings)
    rows = [
        QueueRow(
            view=v,
            state=review_state(v),
            distance=distance_text(v),
            threshold=thresholds.of(v.finding.list_name, v.finding.signal_type),
            content=states.get(v.finding.item_key),
        )
        for v in page.findings
    ]
    more = page.next_offset is not None or page.next_before is not None
    # A value asked for that the drop-downs do not offer (beyond the facets' bound) stays selectable.
    lists = list(facets.lists)
    if q.flt.list_name is not None and q.flt.list_name not in lists:
        lists.append(q.flt.list_name)
    labels = list(facets.labels)
    if q.flt.label is not None and q.flt.label not in labels:
        labels.append(q.flt.label)
    return view.render(
        "findings.html",
        {
            "q": q,
            "rows": rows,
            "total": total,
            "first": q.offset + 1,
            "last": q.offset + len(rows),
            "next_link": q.link(q.offset + len(rows)) if more else None,
            "previous_link": q.link(max(0, q.offset - q.limit)) if q.offset > 0 else None,
            "clear_link": replace(q, flt=FindingFilter()).link(0),
            "page_size": PAGE_SIZE,
            "lists": lists,
            "labels": labels,
            "more_lists": facets.more_lists,
            "more_labels": facets.more_labels,
            "targets": targets,
            "orders": tuple(FindingOrder),
            "review_states": tuple(ReviewState),
            "content_states": CONTENT_CHOICES,
        },
    )


# --------------------------------------------------------------------------- one finding


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """What one gateway said to a takedown probe (`verdict`: available, not_found, blocked, error)."""

    url: str
    status: int | None
    verdict: str


def _gateway_answers(detail: Mapping[str, Any]) -> tuple[GatewayAnswer, ...]:
    answers = detail.get("gateways")
    if not isinstance(answers, dict):
        return ()
    out: list[GatewayAnswer] = []
    for url, said in answers.items():
        if not isinstance(url, str) or not isinstance(said, dict):
            continue
        status, verdict = said.get("status"), said.get("verdict")
        out.append(
            GatewayAnswer(
                url,
                status if isinstance(status, int) and not isinstance(status, bool) else None,
                verdict if isinstance(verdict, str) else "unknown",
            )
        )
    return tuple(out)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class ContentTimeline:
    """The item's takedown tracking now: its state, when it changed, and what the last probe heard."""

    row: ContentStatusRow
    # changed_at - first_alert_at, once unavailable: how long the content stayed up after the first alert.
    time_to_removal_s: float | None
    gateways: tuple[GatewayAnswer, ...]
    providers: int | None
    reason: str | None

    @classmethod
    def of(cls, row: ContentStatusRow) -> ContentTimeline:
        removal = (
            (row.changed_at - row.first_alert_at).total_seconds() if row.state is ContentState.UNAVAILABLE else None
        )
        providers = row.detail.get("providers")
        return cls(
            row=row,
            time_to_removal_s=removal,
            gateways=_gateway_answers(row.detail),
            providers=providers if isinstance(providers, int) and not isinstance(providers, bool) else None,
            reason=_text(row.detail.get("reason")),
        )


@dataclass(frozen=True, slots=True)
class ContentEvent:
    """One change of the item's state as its content.available / content.unavailable event said."""

    at: datetime
    available: bool
    reason: str | None
    time_to_removal_s: float | None
    gateways: tuple[GatewayAnswer, ...]

    @classmethod
    def of(cls, event: EventRow) -> ContentEvent:
        payload = event.payload
        removal = payload.get("time_to_removal_s")
        return cls(
            at=event.created_at,
            available=_CONTENT_EVENTS[event.type],
            reason=_text(payload.get("reason")),
            time_to_removal_s=float(removal)
            if isinstance(removal, (int, float)) and not isinstance(removal, bool)
            else None,
            gateways=_gateway_answers(payload),
        )


@dataclass(frozen=True, slots=True)
class Blocked:
    """A gateway that refused the content (410 / 451) when takedown tracking asked, and when."""

    url: str
    status: int | None
    at: datetime


def _blocked(timeline: ContentTimeline | None, events: Sequence[ContentEvent]) -> list[Blocked]:
    """Every gateway a probe found blocking the item, its latest answer first seen (by URL)."""
    seen: dict[str, Blocked] = {}
    if timeline is not None:
        for a in timeline.gateways:
            if a.verdict == "blocked":
                seen[a.url] = Blocked(a.url, a.status, timeline.row.last_checked_at)
    for event in reversed(events):
        for a in event.gateways:
            if a.verdict == "blocked" and a.url not in seen:
                seen[a.url] = Blocked(a.url, a.status, event.at)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class WhyItMatched:
    distance: str
    threshold: Threshold
    compared: Threshold | None  # vPDQ only
    version: ListVersionRow | None  # the list's newest stored version (None: no agent stored one)


async def _why(view: View, v: FindingView) -> WhyItMatched:
    thresholds = Thresholds(view)
    f = v.finding
    versions = {row.name: row for row in await view.context.services.lists.versions()}
    return WhyItMatched(
        distance=distance_text(v),
        threshold=thresholds.of(f.list_name, f.signal_type),
        compared=thresholds.compared(f.list_name) if f.signal_type is SignalType.VPDQ else None,
        version=versions.get(f.list_name),
    )


def _is_image(detail: FindingDetail) -> bool:
    media_type = detail.view.media_type or (detail.item.media_type if detail.item else None) or ""
    return media_type.startswith("image/")


async def _finding(
    view: View, finding_id: int, *, status: int = 200, error: Invalid | None = None, note: str = ""
) -> web.Response:
    detail = await view.context.services.findings.show(finding_id)
    prefs = await view.context.services.sessions.preferences(view.principal)
    timeline = ContentTimeline.of(detail.content) if detail.content is not None else None
    content_events = [ContentEvent.of(e) for e in detail.events if e.type in _CONTENT_EVENTS]
    reviewed = view.query("reviewed", max_len=20)
    return view.render(
        "finding.html",
        {
            "d": detail,
            "f": detail.view.finding,
            "state": review_state(detail.view),
            "why": await _why(view, detail.view),
            "links": finding_links(detail.view, view.context.settings.gateways.urls),
            "timeline": timeline,
            "content_events": content_events,
            "blocked": _blocked(timeline, content_events),
            "previewable": detail.view.cid is not None and _is_image(detail),
            "veiled": prefs.blur_previews,
            # Retracted (a false positive, or its entry deleted upstream): nothing is left to
            # decide. A confirmed one may still turn out a false positive, so it keeps the form.
            "can_review": view.can(WRITERS) and detail.view.retraction is None,
            # As the API: the webhook URLs a finding was sent to are an admin's to see.
            "show_deliveries": view.can(ADMIN),
            "notice": _REVIEWED.get(reviewed) if reviewed is not None else None,
            "error": error.message if error is not None else None,
            "note": note,
            "max_note": MAX_NOTE,
        },
        status=status,
    )


async def finding_page(view: View) -> web.StreamResponse:
    return await _finding(view, view.id())


async def review_finding(view: View) -> web.StreamResponse:
    finding_id = view.id()
    note = view.form.get("note", "").strip()
    try:
        raw = view.field("verdict", max_len=40)
        verdict = next((v for v in Verdict if v.value == raw), None)
        if verdict is None:
            raise Invalid("choose Confirm or False positive", field="verdict")
        text = view.field("note", required=False, max_len=MAX_NOTE)
    except Invalid as exc:
        # The page again, with the note as typed (cut to its bound) and the reason.
        return await _finding(view, finding_id, status=422, error=exc, note=note[:MAX_NOTE])
    request = ReviewRequest(finding_id, verdict, text or None, reviewer=view.principal.name)
    await view.context.services.findings.review(request)
    raise view.redirect(f"/findings/{finding_id}?reviewed={verdict.value}")


async def finding_preview(view: View) -> web.StreamResponse:
    """The item's image re-encoded by the preview service, fetched now, never stored."""
    detail = await view.context.services.findings.show(view.id())
    try:
        preview = await view.context.services.preview.for_finding(detail)
    except PreviewUnavailable as exc:
        return web.Response(status=502, text=exc.message, content_type="text/plain")
    return web.Response(
        body=preview.data,
        content_type=preview.media_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


PAGES = [
    Page("GET", "/findings", queue_page, READERS),
    Page("GET", "/findings/{id}", finding_page, READERS),
    Page("GET", "/findings/{id}/preview", finding_preview, READERS),
    Page("POST", "/findings/{id}/review", review_finding, WRITERS, resource="finding:{id}"),
]
