"""/v1/findings: pages of findings with filters and a cursor, one finding in full, and
reviews (a false positive retracts it: finding.retracted reaches its subscribers as from
the CLI). A platform sees only the findings delivered to one of its subscriptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from agent.api.paging import decode_cursor, encode_cursor, next_link
from agent.api.routing import Answer, Call, Route
from agent.api.schemas import MAX_ID, Body, Out, Page, Timestamp
from agent.model.access import Role
from agent.model.records import FindingDetail, FindingFilter, FindingView, ReviewRow
from agent.model.status import ReviewState, Verdict
from agent.services.findings import ReviewRequest

READ_FINDINGS = frozenset({Role.ADMIN, Role.INVESTIGATOR, Role.VIEWER, Role.PLATFORM})
REVIEWERS = frozenset({Role.ADMIN, Role.INVESTIGATOR})


class FindingsQuery(Page):
    list_name: str | None = Field(default=None, alias="list", max_length=200, description="only this list's findings")
    label: str | None = Field(default=None, max_length=200, description="only findings with this label, exactly")
    target: int | None = Field(default=None, ge=0, le=MAX_ID, description="only items seen under this target id")
    review: ReviewState | None = Field(default=None, description="by the latest review")
    since: Timestamp | None = Field(default=None, description="recorded at or after (RFC 3339, with offset)")


class ProvenanceOut(Out):
    path: str | None
    root_cid: str | None
    target_id: int | None
    target_url: str | None
    gateway: str | None
    source: str


class ReviewOut(Out):
    id: int
    verdict: Verdict
    note: str | None
    reviewer: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: ReviewRow) -> ReviewOut:
        return cls(id=r.id, verdict=r.verdict, note=r.note, reviewer=r.reviewer, created_at=r.created_at)


class RetractionOut(Out):
    reason: str
    detail: str | None
    created_at: datetime


class FindingOut(Out):
    id: int
    item_key: str
    cid: str | None
    media_type: str | None
    size: int | None
    list_name: str = Field(serialization_alias="list")
    entry_id: str
    entry: str
    signal_type: str
    distance: float
    labels: list[str]
    query: str | None
    list_source: str | None
    list_line: int | None
    compared_percent: float | None
    retroactive: bool
    created_at: datetime
    provenance: ProvenanceOut
    review: ReviewOut | None = Field(description="the latest review")
    retraction: RetractionOut | None

    @classmethod
    def of(cls, v: FindingView) -> FindingOut:
        f, p = v.finding, v.provenance
        return cls(
            id=f.id or 0,
            item_key=f.item_key,
            cid=v.cid,
            media_type=v.media_type,
            size=v.size,
            list_name=f.list_name,
            entry_id=f.entry_id,
            entry=f.entry_value,
            signal_type=f.signal_type.value,
            distance=f.distance,
            labels=list(f.labels),
            query=f.query,
            list_source=f.list_source,
            list_line=f.list_line,
            compared_percent=f.compared_percent,
            retroactive=f.retroactive,
            created_at=f.created_at,
            provenance=ProvenanceOut(
                path=p.path,
                root_cid=p.root_cid,
                target_id=p.target_id,
                target_url=p.target_url,
                gateway=p.gateway,
                source=p.source.value,
            ),
            review=ReviewOut.of(v.review) if v.review else None,
            retraction=RetractionOut(
                reason=v.retraction.reason.value, detail=v.retraction.detail, created_at=v.retraction.created_at
            )
            if v.retraction
            else None,
        )


class FindingsPage(Out):
    findings: list[FindingOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class LocationOut(Out):
    path: str
    target_id: int | None
    target_url: str | None
    root_cid: str | None
    gateway: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class ContentStateOut(Out):
    state: str
    first_alert_at: datetime
    changed_at: datetime
    last_checked_at: datetime


class DeliveryOut(Out):
    id: int
    event_id: str
    event_type: str
    subscription_id: int
    subscription_url: str | None
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    succeeded_at: datetime | None


class FindingDetailOut(FindingOut):
    locations: list[LocationOut]
    reviews: list[ReviewOut] = Field(description="every review, oldest first")
    content: ContentStateOut | None = Field(description="whether the content can still be fetched (null: not checked)")
    deliveries: list[DeliveryOut] | None = Field(description="the webhook deliveries of its events (admins only)")

    @classmethod
    def of_detail(cls, d: FindingDetail, *, deliveries: bool) -> FindingDetailOut:
        base = FindingOut.of(d.view).model_dump()
        return cls(
            **base,
            locations=[
                LocationOut(
                    path=pl.location.path,
                    target_id=pl.location.target_id,
                    target_url=pl.target_url,
                    root_cid=pl.location.root_cid,
                    gateway=pl.location.gateway,
                    first_seen_at=pl.location.first_seen_at,
                    last_seen_at=pl.location.last_seen_at,
                )
                for pl in d.locations
            ],
            reviews=[ReviewOut.of(r) for r in d.reviews],
            content=ContentStateOut(
                state=d.content.state.value,
                first_alert_at=d.content.first_alert_at,
                changed_at=d.content.changed_at,
                last_checked_at=d.content.last_checked_at,
            )
            if d.content
            else None,
            deliveries=[
                DeliveryOut(
                    id=r.delivery.id,
                    event_id=r.delivery.event_id,
                    event_type=r.event_type,
                    subscription_id=r.delivery.subscription_id,
                    subscription_url=r.subscription_url,
                    status=r.delivery.status.value,
                    attempts=r.delivery.attempts,
                    last_status=r.delivery.last_status,
                    last_error=r.delivery.last_error,
                    created_at=r.delivery.created_at,
                    succeeded_at=r.delivery.succeeded_at,
                )
                for r in d.deliveries
            ]
            if deliveries
            else None,
        )


class ReviewIn(Body):
    verdict: Verdict
    note: str | None = Field(default=None, max_length=4000)


async def list_findings(call: Call) -> Answer:
    q = call.query(FindingsQuery)
    flt = FindingFilter(
        list_name=q.list_name,
        label=q.label,
        target_id=q.target,
        review=q.review,
        since=q.since,
        delivered_to=call.principal.name if call.principal.role is Role.PLATFORM else None,
    )
    page = await call.context.services.findings.page(flt, limit=q.limit, before_id=decode_cursor(q.cursor))
    cursor = encode_cursor(page.next_before) if page.next_before is not None else None
    findings = [FindingOut.of(v) for v in page.findings]
    return Answer(FindingsPage(findings=findings, next_cursor=cursor), headers=next_link(call, cursor))


async def get_finding(call: Call) -> FindingDetailOut:
    detail = await call.context.services.findings.show_for(call.id(), call.principal)
    return FindingDetailOut.of_detail(detail, deliveries=call.principal.role is Role.ADMIN)


async def review_finding(call: Call) -> Answer:
    body = call.body(ReviewIn)
    finding_id = call.id()
    request = ReviewRequest(finding_id, body.verdict, body.note, reviewer=call.principal.name)
    row = await call.context.services.findings.review(request)
    return Answer(ReviewOut.of(row), 201, {"Location": f"/v1/findings/{finding_id}"}, resource=f"finding:{finding_id}")


ROUTES = [
    Route(
        "GET",
        "/v1/findings",
        list_findings,
        READ_FINDINGS,
        "Findings, newest first, filtered, one page at a time",
        "findings",
        query=FindingsQuery,
        responses={200: FindingsPage},
        description="A platform token sees only the findings delivered to its subscriptions. The next page's "
        'URL is also in the Link header (rel="next").',
    ),
    Route(
        "GET",
        "/v1/findings/{id}",
        get_finding,
        READ_FINDINGS,
        "One finding: provenance, review history, content state (and deliveries, for admins)",
        "findings",
        responses={200: FindingDetailOut},
    ),
    Route(
        "POST",
        "/v1/findings/{id}/reviews",
        review_finding,
        REVIEWERS,
        "Review a finding (false_positive retracts it and tells its subscribers)",
        "findings",
        body=ReviewIn,
        responses={201: ReviewOut},
        resource="finding:{id}",
    ),
]
