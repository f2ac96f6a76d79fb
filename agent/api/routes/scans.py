"""/v1/scans: scans queued through the API (agent.services.scan_jobs) and run by the agent.

A submit is answered at once (202, queued in the store) and wakes the agent's runner; the
job is then polled. Its `report`, once done, is exactly the JSON `dweb-agent scan --format
json` prints for the same target. The service refuses what an API caller must not name (a
path on the agent's host, a guarded gateway or list URL), each refusal starting with the
field it is about: that field is named in the problem's `errors` too."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from agent.api.paging import decode_cursor, next_link, split_page
from agent.api.problems import FieldError, Problem
from agent.api.routing import READERS, Answer, Call, Route
from agent.api.schemas import Body, Out, Page
from agent.model.access import Role
from agent.model.jobs import JobStatus, ScanJobRow
from agent.services import Invalid, ScanJobRequest
from agent.services.scan_jobs import MAX_GATEWAYS, MAX_LISTS

SCANNERS = frozenset({Role.ADMIN, Role.INVESTIGATOR})
_URL_CHARS = 4096
# "signals[2].value: ...", "gateways[0]: ...", "target: ...": a service's refusal naming its field.
_FIELD = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)?): ")


def invalid_field(exc: Invalid) -> Problem:
    """A service's Invalid as a 422 whose `errors` names the field its message starts with."""
    found = _FIELD.match(exc.message)
    errors = [FieldError(field=found.group(1), message=exc.message[found.end() :])] if found else []
    return Problem(422, exc.message, errors=errors)


class ScanIn(Body):
    target: str = Field(
        min_length=1,
        max_length=_URL_CHARS,
        description="ipfs://CID[/path], /ipfs/CID[/path], ipns://, dnslink://, a CID or a gateway URL; "
        "never a path or CAR file on the agent's host",
    )
    gateways: list[str] = Field(
        default_factory=list,
        max_length=MAX_GATEWAYS,
        description="gateways to fetch from (default: the agent's [gateways] urls); each passes the SSRF guard",
    )
    lists: list[str] = Field(
        default_factory=list,
        max_length=MAX_LISTS,
        description="http(s) list URLs matched beside the agent's own lists; each passes the SSRF guard",
    )
    mode: Literal["car", "raw"] = Field(default="car", description="retrieval mode, as `dweb-agent scan --mode`")


class ScanOptionsOut(Out):
    gateways: list[str]
    lists: list[str]
    mode: Literal["car", "raw"]


class ScanProgressOut(Out):
    items: int = Field(description="items reported so far")
    verified: int
    errors: int
    findings: int


class ScanOut(Out):
    id: int
    status: JobStatus
    target: str
    options: ScanOptionsOut
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(description="how many times an agent has started it (a restart runs it again)")
    cancel_requested: bool
    progress: ScanProgressOut
    report: dict[str, Any] | None = Field(
        description="when done: exactly the JSON of `dweb-agent scan --format json`; null before"
    )
    error: str | None = Field(description="why it failed")

    @classmethod
    def of(cls, row: ScanJobRow) -> ScanOut:
        return cls(
            id=row.id,
            status=row.status,
            target=row.target,
            options=ScanOptionsOut(
                gateways=list(row.options.gateways), lists=list(row.options.lists), mode=row.options.mode
            ),
            requested_by=row.requested_by,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            attempts=row.attempts,
            cancel_requested=row.cancel_requested,
            progress=ScanProgressOut(**row.progress.to_json()),
            report=row.report,
            error=row.error,
        )


class ScansPage(Out):
    scans: list[ScanOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


async def submit_scan(call: Call) -> Answer:
    body = call.body(ScanIn)
    request = ScanJobRequest(body.target, tuple(body.gateways), tuple(body.lists), body.mode)
    try:
        row = await call.context.services.jobs.submit(request, call.principal.name)
    except Invalid as exc:
        raise invalid_field(exc) from None
    if call.context.wake_scans is not None:
        call.context.wake_scans()
    return Answer(ScanOut.of(row), 202, {"Location": f"/v1/scans/{row.id}"}, resource=f"scan:{row.id}")


async def get_scan(call: Call) -> ScanOut:
    return ScanOut.of(await call.context.services.jobs.get(call.id()))


async def list_scans(call: Call) -> Answer:
    q = call.query(Page)
    rows = await call.context.services.jobs.page(q.limit + 1, before_id=decode_cursor(q.cursor))
    page, cursor = split_page(rows, q.limit, lambda r: r.id)
    return Answer(ScansPage(scans=[ScanOut.of(r) for r in page], next_cursor=cursor), headers=next_link(call, cursor))


async def cancel_scan(call: Call) -> Answer:
    jobs = call.context.services.jobs
    before = await jobs.get(call.id())
    if before.status.finished:
        return Answer(ScanOut.of(before), 200)
    # A queued scan is cancelled now; a running one once its runner next renews its lease.
    return Answer(ScanOut.of(await jobs.cancel(before.id)), 202)


ROUTES = [
    Route(
        "POST",
        "/v1/scans",
        submit_scan,
        SCANNERS,
        "Queue a scan of content on the network",
        "scans",
        body=ScanIn,
        responses={202: ScanOut},
        description="Answered at once with the queued scan (status `queued`) and its Location; poll it. "
        "A queued or running scan survives a restart of the agent. Local paths and CAR files are refused, "
        "as are gateways and list URLs at private, loopback or link-local addresses (unless in [api] allow_hosts).",
    ),
    Route(
        "GET",
        "/v1/scans",
        list_scans,
        READERS,
        "Scans, newest first, one page at a time",
        "scans",
        query=Page,
        responses={200: ScansPage},
        description='The next page\'s URL is also in the Link header (rel="next").',
    ),
    Route(
        "GET",
        "/v1/scans/{id}",
        get_scan,
        READERS,
        "One scan: its state, progress and, when done, its report",
        "scans",
        responses={200: ScanOut},
    ),
    Route(
        "DELETE",
        "/v1/scans/{id}",
        cancel_scan,
        SCANNERS,
        "Cancel a scan (202; 200 with it unchanged when it had finished)",
        "scans",
        responses={202: ScanOut, 200: ScanOut},
        resource="scan:{id}",
    ),
]
